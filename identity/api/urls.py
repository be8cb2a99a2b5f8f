from django.urls import re_path
from cloud.routers import ApiRouter

from identity.api import auth, domain_config, endpoint_filter, oauth1, trusts, versions, views

app_name = "identity"

router = ApiRouter()
router.register("v3/domains", views.DomainViewSet, basename="domain")
router.register("v3/projects", views.ProjectViewSet, basename="project")
router.register("v3/users", views.UserViewSet, basename="user")
router.register("v3/groups", views.GroupViewSet, basename="group")
router.register("v3/roles", views.RoleViewSet, basename="role")
router.register("v3/regions", views.RegionViewSet, basename="region")
router.register("v3/services", views.ServiceViewSet, basename="service")
router.register("v3/endpoints", views.EndpointViewSet, basename="endpoint")
router.register("v3/credentials", views.CredentialViewSet, basename="credential")
router.register("v3/policies", views.PolicyViewSet, basename="policy")
router.register(r"v3/users/(?P<user_id>[^/]+)/application_credentials", views.ApplicationCredentialViewSet,
                basename="application-credential")
router.register(r"v3/users/(?P<user_id>[^/]+)/access_rules", views.AccessRuleViewSet, basename="access-rule")

GRANT = (r"(?P<target_kind>projects|domains)/(?P<target_id>[^/]+)/"
         r"(?P<actor_kind>users|groups)/(?P<actor_id>[^/]+)/roles")

SYSTEM_GRANT = r"(?P<target_kind>system)/(?P<actor_kind>users|groups)/(?P<actor_id>[^/]+)/roles"

urlpatterns = [
    re_path(r"^$", versions.IdentityRootView.as_view()),
    re_path(r"^v3/?$", versions.IdentityV3View.as_view()),
    re_path(r"^v3/auth/tokens/?$", auth.TokensView.as_view()),
    re_path(r"^v3/auth/catalog/?$", auth.CatalogView.as_view()),
    re_path(r"^v3/ec2tokens/?$", auth.Ec2TokensView.as_view()),
    re_path(r"^v3/s3tokens/?$", auth.S3TokensView.as_view()),
    re_path(r"^v3/auth/projects/?$", auth.AuthProjectsView.as_view()),
    re_path(r"^v3/auth/domains/?$", auth.AuthDomainsView.as_view()),
    re_path(r"^v3/role_assignments/?$", views.RoleAssignmentListView.as_view()),
    re_path(r"^v3/role_inferences/?$", views.RoleInferencesView.as_view()),
    re_path(r"^v3/roles/(?P<prior_id>[^/]+)/implies/?$", views.RoleInferenceListView.as_view()),
    re_path(r"^v3/roles/(?P<prior_id>[^/]+)/implies/(?P<implied_id>[^/]+)/?$", views.RoleInferenceView.as_view()),
    re_path(rf"^v3/{GRANT}/?$", views.GrantListView.as_view()),
    re_path(rf"^v3/{GRANT}/(?P<role_id>[^/]+)/?$", views.GrantView.as_view()),
    re_path(rf"^v3/{SYSTEM_GRANT}/?$", views.GrantListView.as_view()),
    re_path(rf"^v3/{SYSTEM_GRANT}/(?P<role_id>[^/]+)/?$", views.GrantView.as_view()),
    re_path(rf"^v3/OS-INHERIT/{GRANT}/inherited_to_projects/?$", views.GrantListView.as_view(inherited=True)),
    re_path(rf"^v3/OS-INHERIT/{GRANT}/(?P<role_id>[^/]+)/inherited_to_projects/?$",
            views.GrantView.as_view(inherited=True)),
    re_path(r"^v3/users/(?P<user_id>[^/]+)/credentials/OS-EC2/?$", views.Ec2CredentialListView.as_view()),
    re_path(r"^v3/users/(?P<user_id>[^/]+)/credentials/OS-EC2/(?P<access>[^/]+)/?$",
            views.Ec2CredentialView.as_view()),
    re_path(r"^v3/groups/(?P<group_id>[^/]+)/users/(?P<user_id>[^/]+)/?$", views.GroupMemberView.as_view()),
    re_path(r"^v3/domains/config/default/?$", domain_config.DomainConfigDefaultView.as_view()),
    re_path(r"^v3/domains/config/(?P<group>[^/]+)/default/?$", domain_config.DomainConfigDefaultView.as_view()),
    re_path(r"^v3/domains/config/(?P<group>[^/]+)/(?P<option>[^/]+)/default/?$",
            domain_config.DomainConfigDefaultView.as_view()),
    re_path(r"^v3/domains/(?P<domain_id>[^/]+)/config/(?P<group>security_compliance)/?$",
            domain_config.SecurityComplianceConfigView.as_view()),
    re_path(r"^v3/domains/(?P<domain_id>[^/]+)/config/(?P<group>security_compliance)/(?P<option>[^/]+)/?$",
            domain_config.SecurityComplianceConfigView.as_view()),
    re_path(r"^v3/domains/(?P<domain_id>[^/]+)/config/?$", domain_config.DomainConfigView.as_view()),
    re_path(r"^v3/domains/(?P<domain_id>[^/]+)/config/(?P<group>[^/]+)/?$",
            domain_config.DomainConfigPartView.as_view()),
    re_path(r"^v3/domains/(?P<domain_id>[^/]+)/config/(?P<group>[^/]+)/(?P<option>[^/]+)/?$",
            domain_config.DomainConfigPartView.as_view()),
    re_path(r"^v3/OS-TRUST/trusts/?$", trusts.TrustListView.as_view()),
    re_path(r"^v3/OS-TRUST/trusts/(?P<trust_id>[^/]+)/?$", trusts.TrustView.as_view()),
    re_path(r"^v3/OS-TRUST/trusts/(?P<trust_id>[^/]+)/roles/?$", trusts.TrustRoleListView.as_view()),
    re_path(r"^v3/OS-TRUST/trusts/(?P<trust_id>[^/]+)/roles/(?P<role_id>[^/]+)/?$", trusts.TrustRoleView.as_view()),
    re_path(r"^v3/OS-OAUTH1/consumers/?$", oauth1.ConsumerListView.as_view()),
    re_path(r"^v3/OS-OAUTH1/consumers/(?P<consumer_id>[^/]+)/?$", oauth1.ConsumerView.as_view()),
    re_path(r"^v3/OS-OAUTH1/request_token/?$", oauth1.RequestTokenView.as_view()),
    re_path(r"^v3/OS-OAUTH1/authorize/(?P<request_token_id>[^/]+)/?$", oauth1.AuthorizeView.as_view()),
    re_path(r"^v3/OS-OAUTH1/access_token/?$", oauth1.AccessTokenView.as_view()),
    re_path(r"^v3/users/(?P<user_id>[^/]+)/OS-OAUTH1/access_tokens/?$", oauth1.UserAccessTokenListView.as_view()),
    re_path(r"^v3/users/(?P<user_id>[^/]+)/OS-OAUTH1/access_tokens/(?P<access_token_id>[^/]+)/?$",
            oauth1.UserAccessTokenView.as_view()),
    re_path(r"^v3/users/(?P<user_id>[^/]+)/OS-OAUTH1/access_tokens/(?P<access_token_id>[^/]+)/roles/?$",
            oauth1.UserAccessTokenRoleListView.as_view()),
    re_path(r"^v3/users/(?P<user_id>[^/]+)/OS-OAUTH1/access_tokens/(?P<access_token_id>[^/]+)/roles/"
            r"(?P<role_id>[^/]+)/?$", oauth1.UserAccessTokenRoleView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/endpoint_groups/?$", endpoint_filter.EndpointGroupListView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/endpoint_groups/(?P<group_id>[^/]+)/?$", endpoint_filter.EndpointGroupView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/endpoint_groups/(?P<group_id>[^/]+)/endpoints/?$",
            endpoint_filter.EndpointGroupEndpointsView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/endpoint_groups/(?P<group_id>[^/]+)/projects/?$",
            endpoint_filter.EndpointGroupProjectsView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/endpoint_groups/(?P<group_id>[^/]+)/projects/(?P<project_id>[^/]+)/?$",
            endpoint_filter.EndpointGroupProjectView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/projects/(?P<project_id>[^/]+)/endpoint_groups/?$",
            endpoint_filter.ProjectEndpointGroupsView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/projects/(?P<project_id>[^/]+)/endpoints/?$",
            endpoint_filter.ProjectEndpointsView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/projects/(?P<project_id>[^/]+)/endpoints/(?P<endpoint_id>[^/]+)/?$",
            endpoint_filter.ProjectEndpointView.as_view()),
    re_path(r"^v3/OS-EP-FILTER/endpoints/(?P<endpoint_id>[^/]+)/projects/?$",
            endpoint_filter.EndpointProjectsView.as_view()),
] + router.urls
