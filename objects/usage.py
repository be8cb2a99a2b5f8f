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

_ADD_TO_CONTAINER = (
    f"INSERT INTO {ContainerUsage._meta.db_table} (container_id, shard, object_count, bytes_used) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (container_id, shard) DO UPDATE SET "
    f"object_count = {ContainerUsage._meta.db_table}.object_count + excluded.object_count, "
    f"bytes_used = {ContainerUsage._meta.db_table}.bytes_used + excluded.bytes_used")
_ADD_TO_ACCOUNT = (
    f"INSERT INTO {AccountUsage._meta.db_table} (account_id, shard, container_count, object_count, bytes_used) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id, shard) DO UPDATE SET "
    f"container_count = {AccountUsage._meta.db_table}.container_count + excluded.container_count, "
    f"object_count = {AccountUsage._meta.db_table}.object_count + excluded.object_count, "
    f"bytes_used = {AccountUsage._meta.db_table}.bytes_used + excluded.bytes_used")


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
