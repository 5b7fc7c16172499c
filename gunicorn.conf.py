"""gunicorn's settings, read from the working directory by the Docker image's web process (and by
any `gunicorn robodash.wsgi` started from the repository's root).

No request reads a workbook or launches a large upload: workers do (calls/intake/uploads.py). The
longest request left is a CSV upload at the 10 MB limit, read as it arrives in about 3 s, so
gunicorn's usual 30 s worker timeout stands: a request stuck longer is killed, and its worker
with it, instead of holding one of the few web workers.
"""

timeout = 30
