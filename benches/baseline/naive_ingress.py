"""A naive KafkaChannel ingress: the baseline for benches/channel_throughput.rs.

What someone writes in an afternoon: an aiohttp server taking binary-mode CloudEvents, each POST
produced with confluent-kafka (acks=all, librdkafka's other defaults) and answered 202 once its
delivery report says the broker has it, 503 if it failed, 400 when a required attribute is
missing. One process, one event loop; a thread serves the producer's delivery reports. No
structured mode, no routing, no limits, no metrics.

usage: naive_ingress.py BOOTSTRAP TOPIC PORT
"""

import asyncio
import signal
import sys
import threading

from aiohttp import web
from confluent_kafka import KafkaException, Producer

REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")


def serve(bootstrap, topic, port):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    stopping = threading.Event()

    def poll_reports():
        # poll() releases the GIL while it waits and runs the delivery callbacks here.
        while not stopping.is_set():
            producer.poll(0.1)

    reporter = threading.Thread(target=poll_reports, daemon=True)
    reporter.start()

    async def receive(request):
        headers = request.headers
        if any(name not in headers for name in REQUIRED):
            return web.Response(status=400)
        body = await request.read()
        kafka_headers = [
            ("ce_" + name[3:].lower(), value.encode())
            for name, value in headers.items()
            if name.lower().startswith("ce-")
        ]
        if "Content-Type" in headers:
            kafka_headers.append(("content-type", headers["Content-Type"].encode()))
        loop = asyncio.get_running_loop()
        acked = loop.create_future()

        def settle(error):
            if not acked.done():
                acked.set_result(error)

        def on_delivery(error, _msg):
            loop.call_soon_threadsafe(settle, error)

        try:
            producer.produce(
                topic,
                body,
                key=headers.get("ce-partitionkey"),
                headers=kafka_headers,
                on_delivery=on_delivery,
            )
        except (BufferError, KafkaException):
            return web.Response(status=503)
        error = await acked
        return web.Response(status=503 if error is not None else 202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)

    async def run():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(port)).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())
    stopping.set()
    producer.flush(10)


if __name__ == "__main__":
    serve(*sys.argv[1:4])
