app_name = "compute"

urlpatterns = []
