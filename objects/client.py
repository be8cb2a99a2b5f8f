"""What other apps call to keep data in the object store, in a project's
account, without going through HTTP (block storage's backups do): the
same data path, rows and counts as the wire APIs, so what is put here is
listed, counted and read by Swift and S3 like any object."""
from objects import data, rows, stores
from objects.models import Container, Object


class ObjectStoreError(Exception):
    """The object store could not take or give the data; the message says why."""


def _container(project_id, name, create=False):
    if create:
        data.create_container(project_id, name, {})
    container = Container.objects.select_related("account").filter(account_id=project_id, name=name).first()
    if container is None:
        raise ObjectStoreError(f"Container {name} is missing from the object store.")
    return container


def put(project_id, container_name, name, chunks, content_type="application/octet-stream"):
    """Stores `chunks` (an iterable of bytes) as the object, making the
    container if it is missing: (size, etag)."""
    container = _container(project_id, container_name, create=True)
    try:
        key, size, etag = data.store_data(chunks)
    except stores.StoreError as error:
        raise ObjectStoreError(str(error)) from error
    fields = {"size": size, "etag": etag, "content_type": content_type, "metadata": {}, "headers": {},
              "data_key": key, "last_modified": data.current_time(), "delete_at": None, "slo_segments": None,
              "dlo_manifest": ""}
    try:
        data.commit_object(container, name, fields)
    except (data.QuotaExceeded, data.ContainerGone) as error:
        data.discard_data(key)
        raise ObjectStoreError(str(error) or "The container was deleted meanwhile.") from error
    except BaseException:
        data.discard_data(key)
        raise
    return size, etag


def open_object(project_id, container_name, name):
    """The object's data as a readable binary file."""
    row = rows.object_named(_container(project_id, container_name), name)
    if row is None or not row.data_key:
        raise ObjectStoreError(f"Object {container_name}/{name} is missing from the object store.")
    try:
        return stores.default().open(row.data_key)
    except stores.StoreError as error:
        raise ObjectStoreError(str(error)) from error


def delete_prefix(project_id, container_name, prefix):
    """Deletes every object of the container whose name starts with
    `prefix` (and their data): how many went. No container: none."""
    container = Container.objects.select_related("account").filter(account_id=project_id,
                                                                   name=container_name).first()
    if container is None:
        return 0
    names = Object.objects.filter(container=container, name__startswith=prefix).values_list("name", flat=True)
    return sum(data.delete_object(container, name) for name in list(names))
