from rest_framework.views import APIView


class ApiView(APIView):
    """Base of every Stratus API view. `policy` maps operations to rules
    (see cloud.policy)."""

    policy = {}
