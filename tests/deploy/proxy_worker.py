"""Azure's runtime library for Python 3.13+ (azure-functions-runtime), driven as the host's proxy worker drives it.

From Python 3.13 the Functions host starts a proxy worker that hands each message of its gRPC stream to the
library's `handle_event` functions and streams back what they return. This script plays host and proxy worker
in one process, without the channel: worker init, the functions' metadata (the library indexes function_app.py),
one load request per function, then one invocation per request read as JSON from stdin (its fields as the
host fills them in), each as an RpcHttp message or, for a timer, as the JSON the host sends. What the library
answered is written to stdout as JSON.

Run it as `python -I tests/deploy/proxy_worker.py` from the app directory: the app directory is then the working
directory and the first entry of sys.path, as on Azure, with neither PYTHONPATH nor this script's folder.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import uuid
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType
from typing import Any

HOST = "127.0.0.1"
HOST_VERSION = "4.1041.200"
PROTOS = "function_rpc_protos"
HTTP_FIELDS = ("method", "url", "headers", "query", "params")  # params: the route's parameters


@dataclass(frozen=True)
class WorkerRequest:
    """What the proxy worker passes the library: the host's message, and for init the protos and host."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


def load_protos() -> ModuleType:
    """The generated FunctionRpc messages, which azure-functions-runtime-v1 ships as a top-level `tests.protos`.

    Loaded from their files under a name of their own: with the app directory on sys.path, `tests` is the app's.
    """
    init = Path(str(distribution("azure-functions-runtime-v1").locate_file("tests/protos/__init__.py")))
    spec = importlib.util.spec_from_file_location(PROTOS, init, submodule_search_locations=[str(init.parent)])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PROTOS] = module
    spec.loader.exec_module(module)
    return module


class ProxyWorker:
    """Each call sends the library one message as the proxy worker does and returns its answer, summed up."""

    def __init__(self, runtime: ModuleType, protos: ModuleType, app_directory: str) -> None:
        self.runtime = runtime
        self.protos = protos
        self.app_directory = app_directory
        self.functions: dict[str, Any] = {}  # RpcFunctionMetadata by name, as the library indexed them

    def outcome(self, result: Any) -> dict[str, str]:
        """A StatusResult as the host reads it: Success or Failure, and the exception's message if any."""
        return {"status": self.protos.StatusResult.Status.Name(result.status), "exception": result.exception.message}

    async def init(self) -> dict[str, str]:
        init = self.protos.WorkerInitRequest(host_version=HOST_VERSION, function_app_directory=self.app_directory)
        message = self.protos.StreamingMessage(request_id=str(uuid.uuid4()), worker_init_request=init)
        properties = {"protos": self.protos, "host": HOST}
        response = await self.runtime.worker_init_request(WorkerRequest("WorkerInitRequest", message, properties))
        return self.outcome(response.result)

    async def metadata(self) -> dict[str, str]:
        request = self.protos.FunctionsMetadataRequest(function_app_directory=self.app_directory)
        message = self.protos.StreamingMessage(functions_metadata_request=request)
        response = await self.runtime.functions_metadata_request(WorkerRequest("WorkerMetadataRequest", message))
        self.functions = {function.name: function for function in response.function_metadata_results}
        return self.outcome(response.result)

    async def load(self, name: str) -> dict[str, str]:
        function = self.functions[name]
        request = self.protos.FunctionLoadRequest(function_id=function.function_id, metadata=function)
        message = self.protos.StreamingMessage(function_load_request=request)
        response = await self.runtime.function_load_request(WorkerRequest("FunctionLoadRequest", message))
        return self.outcome(response.result)

    async def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        """One HTTP request, bound to the function's trigger by name, its body as bytes alone (the library asks
        the host for RawHttpBodyBytes and RpcHttpBodyOnly at init); or, with `timer`, the JSON the host sends
        a timer function."""
        function = self.functions.get(request["function"])
        if function is None:
            return {"status": "Failure", "exception": "not indexed", "status_code": 0, "headers": {}, "body": ""}
        kind = "timerTrigger" if "timer" in request else "httpTrigger"
        (trigger,) = [name for name, binding in function.bindings.items() if binding.type == kind]
        if "timer" in request:
            data = self.protos.ParameterBinding(
                name=trigger, data=self.protos.TypedData(json=json.dumps(request["timer"]))
            )
        else:
            http = self.protos.RpcHttp(**{field: request[field] for field in HTTP_FIELDS})
            if request["body"]:
                http.body.CopyFrom(self.protos.TypedData(bytes=request["body"].encode()))
            data = self.protos.ParameterBinding(name=trigger, data=self.protos.TypedData(http=http))
        invocation = self.protos.InvocationRequest(
            invocation_id=str(uuid.uuid4()), function_id=function.function_id, input_data=[data]
        )
        message = self.protos.StreamingMessage(invocation_request=invocation)
        response = await self.runtime.invocation_request(WorkerRequest("FunctionInvocationRequest", message))
        answer = response.return_value.http
        body = answer.body.bytes if answer.body.WhichOneof("data") == "bytes" else answer.body.string.encode()
        return {
            **self.outcome(response.result),
            "status_code": int(answer.status_code or 0),
            "headers": dict(answer.headers),
            "body": body.decode(),
        }


async def drive(requests: list[dict[str, Any]]) -> dict[str, Any]:
    import azure_functions_runtime as runtime

    worker = ProxyWorker(runtime, load_protos(), os.getcwd())
    runtime.start_threadpool_executor()
    try:
        init = await worker.init()
        metadata = await worker.metadata()
        loaded = {name: await worker.load(name) for name in worker.functions}
        answers = [await worker.invoke(request) for request in requests]
    finally:
        runtime.stop_threadpool_executor()
    bindings = {name: [json.loads(raw) for raw in f.raw_bindings] for name, f in worker.functions.items()}
    return {"init": init, "metadata": metadata, "bindings": bindings, "loaded": loaded, "answers": answers}


def main() -> None:
    sys.path.insert(0, os.getcwd())
    report = asyncio.run(drive(json.load(sys.stdin)))
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    main()
