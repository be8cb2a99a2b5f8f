app_name = "volumes"

urlpatterns = []
