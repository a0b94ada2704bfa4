"""Deployment health: active probes, passive outlier detection, and the status report.

    config.py    the `health:` section of providers.yaml
    outlier.py   pure: which attempts count, the sliding window, when to eject
    samples.py   latency and time-to-first-token samples: percentiles and an EWMA
    record.py    DeploymentHealth, one per deployment (on DeploymentRuntime.health)
    probes.py    one probe: GET /models or a one-token completion, outcome only
    prober.py    a task per probe target, started in the app's lifespan
    passive.py   an Observer that feeds real traffic into DeploymentHealth
    monitor.py   HealthMonitor: the pieces above, wired for the app
    report.py    the status and explain reports (read-only views of the state)

Routing sees health only through `GatewayState.status` (Availability.EJECTED).
"""
