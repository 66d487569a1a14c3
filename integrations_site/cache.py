"""Django's Redis cache backend, reusing its Redis client objects.

Django's ``RedisCacheClient.get_client()`` builds a new ``redis.Redis`` object (and its table
of ~170 response callbacks) on every cache operation: about half a millisecond each, which the
outbound engine pays on every call. The client is thread-safe and the connection pool is shared
anyway, so this backend keeps one client per pool.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class HubRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
