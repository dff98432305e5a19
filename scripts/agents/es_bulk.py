"""Sends logs to Silt with the official Elasticsearch Python client, as a shipper would.

Usage: es_bulk.py URL API_KEY COUNT
Does the handshake calls agents make (info, license, template and ILM set-up), then
`helpers.bulk` of COUNT ECS documents into the index `es-app`, plus a few broken ones sent
raw. Prints a JSON summary of what was sent (and what the server answered) on stdout.
"""
import json
import sys
from collections import Counter

from elasticsearch import Elasticsearch, helpers

url, api_key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
es = Elasticsearch(url, api_key=api_key, request_timeout=60)

info = es.info()
license_info = es.license.get()
es.indices.put_index_template(name="es-app", index_patterns=["es-app*"], data_stream={})
template_exists = bool(es.indices.exists_index_template(name="es-app"))
es.ilm.put_lifecycle(name="es-app", policy={"phases": {"hot": {"actions": {}}}})

levels = ["info", "warn", "error", "debug"]
services = ["checkout", "payments", "search"]
base_ms = 1_763_800_000_000  # 2025-11-22T08:26:40Z
docs = []
for i in range(count):
    docs.append({
        "_index": "es-app",
        "_op_type": "create" if i % 2 else "index",
        "_source": {
            "@timestamp": base_ms + i * 7,
            "log": {"level": levels[i % 4]},
            "service": {"name": services[i % 3]},
            "host": {"name": f"node-{i % 5}"},
            "trace": {"id": f"{i:032x}"},
            "message": f"order {i} handled in {i % 97} ms",
            "http": {"response": {"status_code": 200 + (i % 3) * 100}},
        },
    })
ok, errors = helpers.bulk(es, docs, chunk_size=500, raise_on_error=False, stats_only=False)

# Broken input sent as-is: an unknown action, a document that is not an object, a delete.
raw = (
    '{"index":{"_index":"es-app"}}\n{"message":"kept despite its neighbours","log.level":"warn","service.name":"raw","@timestamp":"2025-11-22T08:00:00Z"}\n'
    '{"frobnicate":{"_index":"es-app"}}\n{"message":"never stored"}\n'
    '{"index":{"_index":"es-app"}}\n[1,2,3]\n'
    '{"delete":{"_index":"es-app","_id":"1"}}\n'
)
broken = es.bulk(operations=raw)

print(json.dumps({
    "version": info["version"]["number"],
    "tagline": info["tagline"],
    "license": license_info["license"]["status"],
    "template_exists": template_exists,
    "ok": ok,
    "errors": len(errors),
    "levels": Counter(levels[i % 4] for i in range(count)),
    "services": Counter(services[i % 3] for i in range(count)),
    "min_ms": base_ms,
    "max_ms": base_ms + (count - 1) * 7,
    "broken_errors": broken["errors"],
    "broken_statuses": [list(item.values())[0]["status"] for item in broken["items"]],
    "broken_types": [list(item.values())[0].get("error", {}).get("type") for item in broken["items"]],
}))
