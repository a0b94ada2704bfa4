"""Chaos toolkit: rehearse vendor outages against the gateway and hold it to its SLOs.

A scenario file (`scenario.py`) names simulated vendors, the gateway config, a bounded
load, a fault timeline and the SLOs. A run (`runner.py`) starts the vendors and a
gateway (or targets one by URL), plays the timeline (`timeline.py`, pure) while the load
driver (`load.py`) sends requests and judges every answer (`verdict.py`, pure), samples
breaker state (`probe.py`), then evaluates the SLOs (`slo.py`, pure) and writes the
report (`series.py`, `report.py`, `plot.py`).

    scenario.yaml ─► Scenario ─► runner ─┬─ vendors + gateway
                                         ├─ timeline ─► set_faults / go_down
                                         ├─ load driver ─► RequestRecord per request
                                         └─ sampler ─► breaker + fault state per tick
                                   ─► slo.evaluate ─► report: table, JSON, PNG

The library of ready scenarios lives in `gateway/chaos/scenarios/`.
"""
