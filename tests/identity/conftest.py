import pytest


@pytest.fixture(scope="module")
def committed_db(django_db_setup, django_db_blocker):
    """In-process writes (the Django admin's, say) that commit, so the live
    server sees them."""
    with django_db_blocker.unblock():
        yield
