"""Swift's errors, raised anywhere in a request and answered by the view."""


class SwiftError(Exception):
    def __init__(self, status, message=None, headers=None):
        super().__init__(message or str(status))
        self.status, self.message, self.headers = status, message, headers or {}


def bad_request(message):
    return SwiftError(400, message)


UNAUTHORIZED = 401
FORBIDDEN = 403
NOT_FOUND = 404
