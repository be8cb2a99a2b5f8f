"""Containers' and accounts' counts, kept exact without making concurrent
writers wait on one row.

A writer adds what it changed (objects, bytes, containers) to share rows of
its own, picked by its process and thread, in the same transaction as the
change itself: the sum of a container's or an account's shares is exact at
every commit, and two writers lock the same share only when their
(process, thread) pairs fall on the same one of SHARDS. A reader sums the
shares (at most SHARDS rows each)."""
import os
import threading

from django.db import connection
from django.db.models import IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from objects.models import AccountUsage, ContainerUsage

SHARDS = 16

_CONTAINER_SHARES, _ACCOUNT_SHARES = ContainerUsage._meta.db_table, AccountUsage._meta.db_table


def _add_to_container(source):
    """The upsert adding `source`'s (container_id, shard, object_count,
    bytes_used) to a share of a container's counts."""
    return (f"INSERT INTO {_CONTAINER_SHARES} (container_id, shard, object_count, bytes_used) {source} "
            "ON CONFLICT (container_id, shard) DO UPDATE SET "
            f"object_count = {_CONTAINER_SHARES}.object_count + excluded.object_count, "
            f"bytes_used = {_CONTAINER_SHARES}.bytes_used + excluded.bytes_used")


def _add_to_account(source):
    """The same for (account_id, shard, container_count, object_count, bytes_used)."""
    return (f"INSERT INTO {_ACCOUNT_SHARES} (account_id, shard, container_count, object_count, bytes_used) {source} "
            "ON CONFLICT (account_id, shard) DO UPDATE SET "
            f"container_count = {_ACCOUNT_SHARES}.container_count + excluded.container_count, "
            f"object_count = {_ACCOUNT_SHARES}.object_count + excluded.object_count, "
            f"bytes_used = {_ACCOUNT_SHARES}.bytes_used + excluded.bytes_used")


_ADD_TO_CONTAINER = _add_to_container("VALUES (%s, %s, %s, %s)")
_ADD_TO_ACCOUNT = _add_to_account("VALUES (%s, %s, %s, %s, %s)")


def counted_insert(insert_sql, insert_params, container_id, account_id):
    """One PostgreSQL statement that runs `insert_sql` (an INSERT ...
    RETURNING id, size that may insert nothing) and adds the row it
    inserted, if any, to this writer's shares of the container's and the
    account's counts: (sql, params). One statement is one round trip, and
    its own transaction outside of one."""
    shard = writer_shard()
    # The account's share is written from the container share's RETURNING
    # row, so after it: the same order as add(). PostgreSQL runs sibling
    # data-modifying WITH parts in an order of its own, and two writers on
    # one shard taking the two shares in opposite orders deadlock.
    sql = (f"WITH new AS ({insert_sql}), "
           f"container_share AS ({_add_to_container('SELECT %s, %s, 1, size FROM new')} RETURNING 1), "
           f"account_share AS ({_add_to_account('SELECT %s, %s, 0, 1, new.size FROM new, container_share')}) "
           "SELECT id FROM new")
    return sql, [*insert_params, container_id, shard, account_id, shard]


def counted_update(changed_sql, changed_params, container_id, account_id):
    """One PostgreSQL statement that runs `changed_sql` (WITH parts ending
    in one named `changed`, an UPDATE ... RETURNING id, added, old_key:
    the row replaced, the bytes it grew by and the data key it named) and
    adds the growth to this writer's shares of the container's and the
    account's bytes: (sql, params), as counted_insert."""
    shard = writer_shard()
    sql = (f"WITH {changed_sql}, "
           f"container_share AS ({_add_to_container('SELECT %s, %s, 0, added FROM changed WHERE added <> 0')} "
           "RETURNING 1), "
           f"account_share AS ({_add_to_account('SELECT %s, %s, 0, 0, changed.added FROM changed, container_share')}) "
           "SELECT id, old_key FROM changed")
    return sql, [*changed_params, container_id, shard, account_id, shard]


def writer_shard():
    return hash((os.getpid(), threading.get_ident())) % SHARDS


def add(container_id, account_id, objects=0, bytes_used=0, containers=0):
    """Adds the changes to this writer's shares of the container (None: an
    account-only change) and of the account; inside the caller's transaction."""
    shard = writer_shard()
    with connection.cursor() as cursor:
        if container_id is not None and (objects or bytes_used):
            cursor.execute(_ADD_TO_CONTAINER, [container_id, shard, objects, bytes_used])
        if objects or bytes_used or containers:
            cursor.execute(_ADD_TO_ACCOUNT, [account_id, shard, containers, objects, bytes_used])


def container_totals(container_id):
    """(object count, bytes used) of the container."""
    found = ContainerUsage.objects.filter(container_id=container_id).aggregate(
        objects=Sum("object_count"), bytes=Sum("bytes_used"))
    return found["objects"] or 0, found["bytes"] or 0


def account_totals(account_id):
    """(container count, object count, bytes used) of the account."""
    found = AccountUsage.objects.filter(account_id=account_id).aggregate(
        containers=Sum("container_count"), objects=Sum("object_count"), bytes=Sum("bytes_used"))
    return found["containers"] or 0, found["objects"] or 0, found["bytes"] or 0


def _container_sum(field):
    shares = ContainerUsage.objects.filter(container=OuterRef("pk")).order_by().values("container")
    return Coalesce(Subquery(shares.annotate(total=Sum(field)).values("total"), output_field=IntegerField()),
                    Value(0))


def with_totals(containers):
    """A container queryset whose rows carry `object_count` and `bytes_used`."""
    return containers.annotate(object_count=_container_sum("object_count"), bytes_used=_container_sum("bytes_used"))
