"""`update_returning`: Django's QuerySet.update that also gives back the
rows it changed, for the hot paths where a read followed by a
compare-and-swap write would be two queries."""
from django.db import connections
from django.db.models.sql import UpdateQuery


def update_returning(queryset, **fields):
    """Runs queryset.update(**fields) as one UPDATE ... RETURNING
    (PostgreSQL, and SQLite from 3.35) and returns the changed rows as
    model instances, as that statement left them. The queryset is a plain
    filter of one model's own columns (no joins, slices or ordering)."""
    model = queryset.model
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(fields)
    statement, params = query.get_compiler(queryset.db).as_sql()
    quote = connections[queryset.db].ops.quote_name
    columns = ", ".join(quote(field.column) for field in model._meta.concrete_fields)
    return list(model.objects.using(queryset.db).raw(f"{statement} RETURNING {columns}", params))
