"""Sends logs to Silt with the OpenTelemetry Python SDK and its OTLP/HTTP (protobuf) exporter.

Usage: otel_logs.py URL API_KEY COUNT
Emits COUNT records through the standard logging bridge, half of them inside a span, with
resource service.name/host.name and per-record attributes, then flushes. Prints a JSON
summary of what was sent on stdout.
"""
import json
import logging
import sys
from collections import Counter

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

url, api_key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

resource = Resource.create({"service.name": "otel-shop", "host.name": "otel-host-1", "deployment.environment": "test"})
provider = LoggerProvider(resource=resource)
exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=256))
set_logger_provider(provider)
trace.set_tracer_provider(TracerProvider(resource=resource))
tracer = trace.get_tracer("silt-test")

logger = logging.getLogger("shop.orders")
logger.propagate = False
logger.setLevel(logging.DEBUG)
logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))

levels = [(logging.INFO, "INFO"), (logging.WARNING, "WARN"), (logging.ERROR, "ERROR"), (logging.DEBUG, "DEBUG")]
trace_ids = set()
for i in range(count):
    level, _ = levels[i % 4]
    if i % 2:
        with tracer.start_as_current_span("order") as span:
            trace_ids.add(format(span.get_span_context().trace_id, "032x"))
            logger.log(level, "otel order %d shipped", i, extra={"order.id": i, "customer": f"c{i % 10}"})
    else:
        logger.log(level, "otel order %d shipped", i, extra={"order.id": i, "customer": f"c{i % 10}"})

ok = provider.force_flush(30_000)
provider.shutdown()
print(json.dumps({
    "flushed": ok,
    "levels": Counter(levels[i % 4][1] for i in range(count)),
    "traced": sum(1 for i in range(count) if i % 2),
    "trace_ids": sorted(trace_ids)[:5],
}))
