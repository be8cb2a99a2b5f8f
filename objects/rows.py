"""The few statements every object request makes, as SQL of our own.

Building a query through the ORM costs about half a millisecond of CPU
(compiling the query each time), several times what the database takes to
answer it; a 4 KiB PUT or GET makes two or three of them. These are the
same statements with their columns taken from the models, run on a
cursor, with values prepared and converted by the models' own fields and
rows made by Model.from_db, so what goes in and comes back is what the ORM
would write and return."""
from django.db import connection

from objects import usage
from objects.models import Account, Container, Object


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def _columns(model, alias):
    return ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in model._meta.concrete_fields)


_statements = {}


def _sql(name, build):
    """The statement `name`, built by `build()` once per kind of database."""
    key = (name, connection.vendor)
    if key not in _statements:
        _statements[key] = build()
    return _statements[key]


class _Reader:
    """Makes model instances from a row's values, starting at `offset`."""

    def __init__(self, model):
        self.model = model
        self.fields = model._meta.concrete_fields
        self.names = [field.attname for field in self.fields]
        self._converters = {}

    def converters(self):
        vendor = connection.vendor
        if vendor not in self._converters:
            found = []
            for field in self.fields:
                column = field.get_col(self.model._meta.db_table)
                found.append((column, connection.ops.get_db_converters(column) + field.get_db_converters(connection)))
            self._converters[vendor] = found
        return self._converters[vendor]

    def __call__(self, values, offset=0):
        converted = []
        for (column, converters), value in zip(self.converters(), values[offset:offset + len(self.fields)]):
            for converter in converters:
                value = converter(value, column, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.names, converted)


_container, _account, _object = _Reader(Container), _Reader(Account), _Reader(Object)


def _one(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def container_with_account(project_id, name):
    """The account's container of that name with its account (`.account`), or None."""
    sql = _sql("container_with_account", lambda: (
        f"SELECT {_columns(Container, 'c')}, {_columns(Account, 'a')} FROM {_table(Container)} c "
        f"JOIN {_table(Account)} a ON a.project_id = c.account_id WHERE c.account_id = %s AND c.name = %s"))
    values = _one(sql, [project_id, name])
    if values is None:
        return None
    container = _container(values)
    container.account = _account(values, len(_container.fields))
    return container


def object_named(container, name, for_update=False):
    """The container's object of that name, or None; locked for the
    transaction when `for_update` (the database must support it)."""
    sql = _sql("object_named", lambda: (
        f"SELECT {_columns(Object, 'o')} FROM {_table(Object)} o WHERE o.container_id = %s AND o.name = %s"))
    if for_update and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    values = _one(sql, [container.pk, name])
    if values is None:
        return None
    row = _object(values)
    row.container = container
    return row


def _prepared(model, values):
    """(quoted columns, parameters) of {field name: value}."""
    columns, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        columns.append(connection.ops.quote_name(field.column))
        params.append(field.get_db_prep_save(value, connection))
    return columns, params


def _insert(container, name, fields):
    columns, params = _prepared(Object, {"container": container.pk, "name": name, **fields})
    return (f"INSERT INTO {_table(Object)} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            f"ON CONFLICT (container_id, name) DO NOTHING RETURNING id, size"), params


def insert_object(container, name, fields):
    """Inserts the object's row unless one of that name exists (made by a
    concurrent writer just now): the new row's id, or None."""
    found = _one(*_insert(container, name, fields))
    return found[0] if found else None


def insert_counted_object(container, name, fields):
    """On PostgreSQL, the object's row inserted and added to its
    container's and account's counts in one statement (see
    objects.usage.counted_insert) unless one of that name exists: the new
    row's id, or None."""
    found = _one(*usage.counted_insert(*_insert(container, name, fields), container.pk, container.account_id))
    return found[0] if found else None


def replace_counted_object(container, name, fields):
    """On PostgreSQL, the container's object of that name locked, given
    the fields and its growth added to the container's and account's bytes
    in one statement (objects.usage.counted_update): (row id, the data key
    it named), or None when there is no such object (deleted just now)."""
    columns, params = _prepared(Object, fields)
    table = _table(Object)
    changed = (f"old AS (SELECT id, size, data_key FROM {table} WHERE container_id = %s AND name = %s FOR UPDATE), "
               f"changed AS (UPDATE {table} o SET {', '.join(f'{column} = %s' for column in columns)} FROM old "
               "WHERE o.id = old.id RETURNING o.id, o.size - old.size AS added, old.data_key AS old_key)")
    return _one(*usage.counted_update(changed, [container.pk, name, *params], container.pk, container.account_id))


def update_object(row_id, fields):
    columns, params = _prepared(Object, fields)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_table(Object)} SET {', '.join(f'{column} = %s' for column in columns)} "
                       f"WHERE id = %s", [*params, row_id])


def delete_object(row_id):
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table(Object)} WHERE id = %s", [row_id])
