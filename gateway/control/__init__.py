"""The SRE control plane: runtime overrides on top of providers.yaml, config reload,
persistence (a local state file or Redis shared by every replica) and the audit log.

    settings.py    the `admin:` and `state:` sections of providers.yaml
    overrides.py   pure: the overrides document and the operations that change it
    compose.py     pure: file config + overrides -> the effective config, validated
    render.py      pure: the effective config as YAML with secrets masked, and diffs
    lines.py       pure: YAML line numbers for `key.path: message` problems
    audit.py       the audit entry
    store.py       where overrides and the audit log live: memory or a local file
    redis_store.py the same in Redis, shared by every replica
    watch.py       providers.yaml watching (ConfigMap symlink swaps included) and SIGHUP
    install.py     one synchronous swap of file + overrides into GatewayState
    reload.py      reading and validating providers.yaml for a reload
    sync.py        following Redis: poll the revision, install what moved
    plane.py       ControlPlane: the one writer (reload, change, sync) under one lock
    views.py       read-only views for the admin API: routes with live state, status

Nothing here runs on the request path: requests read the GatewayState snapshot and
runtime flags that the control plane installs.
"""
