"""What every Stratus API server runs with (`gunicorn -c python:cloud.gunicorn_conf`):
the all-in-one, the tests' live server and the benchmarks."""

# Clients poll (`openstack server delete --wait` every 2 s) on kept-alive
# connections. With gunicorn's default of 2 s the server may close one just
# as the client sends on it, and the request fails with "Remote end closed
# connection": idle connections stay open well past any poll interval.
keepalive = 75
worker_class = "cloud.server.KeepAliveThreadWorker"
logger_class = "cloud.server.AccessLogger"
