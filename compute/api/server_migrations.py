"""os-migrations: the resizes of every project, for admins, with Nova's
filters and (from microversion 2.59) paging newest first."""
from rest_framework.response import Response

from compute.api.base import ComputeView, is_uuid, nova_time_usec, paginate_from
from compute.api.servers import parse_time
from compute.models import Migration

FILTERS = {"instance_uuid": "instance_id", "status": "status", "source_compute": "source_compute",
           "migration_type": "migration_type"}


def migration_body(request, migration):
    data = {
        "id": migration.id, "instance_uuid": str(migration.instance_id), "status": migration.status,
        "migration_type": migration.migration_type,
        "source_compute": migration.source_compute, "source_node": migration.source_node,
        "dest_compute": migration.dest_compute, "dest_node": migration.dest_node, "dest_host": migration.dest_host,
        "old_instance_type_id": migration.old_flavor["id"], "new_instance_type_id": migration.new_flavor["id"],
        "created_at": nova_time_usec(migration.created_at), "updated_at": nova_time_usec(migration.updated_at),
    }
    if request.api_version >= (2, 59):
        data["uuid"] = str(migration.uuid)
    return data


class MigrationListView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request):
        params = request.query_params
        migrations = Migration.objects.all()
        for param, column in FILTERS.items():
            if params.get(param):
                if param == "instance_uuid" and not is_uuid(params[param]):
                    migrations = migrations.none()  # no server has such an id
                    continue
                migrations = migrations.filter(**{column: params[param]})
        if params.get("host"):
            migrations = migrations.filter(source_compute=params["host"]) | migrations.filter(
                dest_compute=params["host"])
        if request.api_version >= (2, 59) and params.get("changes-since"):
            migrations = migrations.filter(updated_at__gte=parse_time(params["changes-since"], "changes-since"))
        rows, next_url = paginate_from(request, (2, 59), migrations, [("created_at", "desc"), ("id", "desc")],
                                       marker_field="uuid")
        body = {"migrations": [migration_body(request, row) for row in rows]}
        if next_url:
            body["migrations_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)
