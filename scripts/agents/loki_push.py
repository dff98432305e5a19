"""Pushes logs to Silt the way Promtail and Grafana Alloy do: a logproto.PushRequest in
protobuf, snappy-compressed (block format), built with Google's protobuf runtime from the
message definitions of Loki's push.proto.

Usage: loki_push.py URL API_KEY COUNT
Prints a JSON summary of what was sent on stdout.
"""
import json
import sys
import urllib.request
from collections import Counter

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2
from google.protobuf import message_factory

url, api_key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

# logproto (grafana/loki pkg/push/push.proto), the messages a push uses.
fdp = descriptor_pb2.FileDescriptorProto(name="push.proto", package="logproto", syntax="proto3",
                                         dependency=["google/protobuf/timestamp.proto"])
F = descriptor_pb2.FieldDescriptorProto


def message(name, *fields):
    m = fdp.message_type.add(name=name)
    for number, (field_name, kind, label, type_name) in enumerate(fields, start=1):
        f = m.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            f.type_name = type_name


message("PushRequest", ("streams", F.TYPE_MESSAGE, F.LABEL_REPEATED, ".logproto.StreamAdapter"))
message("StreamAdapter", ("labels", F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("entries", F.TYPE_MESSAGE, F.LABEL_REPEATED, ".logproto.EntryAdapter"),
        ("hash", F.TYPE_UINT64, F.LABEL_OPTIONAL, None))
message("EntryAdapter", ("timestamp", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".google.protobuf.Timestamp"),
        ("line", F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("structuredMetadata", F.TYPE_MESSAGE, F.LABEL_REPEATED, ".logproto.LabelPairAdapter"))
message("LabelPairAdapter", ("name", F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("value", F.TYPE_STRING, F.LABEL_OPTIONAL, None))

pool = descriptor_pool.DescriptorPool()
pool.AddSerializedFile(descriptor_pb2.FileDescriptorProto.FromString(
    timestamp_pb2.DESCRIPTOR.serialized_pb).SerializeToString())
pool.Add(fdp)
PushRequest = message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))

base_ns = 1_763_800_000_000_000_000
levels = ["info", "warn", "error"]
request = PushRequest()
sent = Counter()
for s, (job, level) in enumerate([("loki-api", "info"), ("loki-api", "error"), ("loki-worker", "warn")]):
    stream = request.streams.add()
    stream.labels = f'{{job="{job}", level="{level}", env="prod", quote="say \\"hi\\""}}'
    for i in range(count // 3):
        entry = stream.entries.add()
        ns = base_ns + (s * count + i) * 1000
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(ns, 1_000_000_000)
        entry.line = f"loki line {s}-{i} from {job}"
        meta = entry.structuredMetadata.add()
        meta.name, meta.value = "trace_id", f"{s:02x}{i:030x}"
        sent[(job, level)] += 1

body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
req = urllib.request.Request(f"{url}/loki/api/v1/push", data=body, method="POST", headers={
    "Content-Type": "application/x-protobuf",
    "Authorization": f"Bearer {api_key}",
})
with urllib.request.urlopen(req, timeout=30) as answer:
    status = answer.status
print(json.dumps({"status": status, "sent": {f"{k[0]}/{k[1]}": v for k, v in sent.items()},
                  "first_ns": base_ns}))
