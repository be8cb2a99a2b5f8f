from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    """Routes that answer with and without a trailing slash (OpenStack
    clients use both) and reverse to the form without."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
