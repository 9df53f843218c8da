"""STAND-INS for TensorFlow Serving, for tests only.

TF Serving's server binary cannot be installed on our machines, so these small servers answer
its documented Predict APIs by running the exported SavedModel's signatures in this process:

* `RestStandIn`: `POST /v1/models/<name>:predict` with the row ("instances") or columnar
  ("inputs") JSON forms, answering `{"predictions": ...}` / `{"outputs": ...}`, and
  `{"error": ...}` with HTTP 400 on bad input, as TF Serving does.
* `GrpcStandIn`: `tensorflow.serving.PredictionService/Predict` with `PredictRequest`s.

They check our client and export against the API's shapes; they are not TF Serving.
"""

import http.server
import json
import threading
from concurrent import futures

import numpy as np
import tensorflow as tf


class _Model:
    def __init__(self, name, saved_model_dir):
        self.name = name
        self.loaded = tf.saved_model.load(saved_model_dir)

    def run(self, signature_name, inputs):
        signature = self.loaded.signatures[signature_name]
        specs = signature.structured_input_signature[1]
        missing = set(specs) - set(inputs)
        if missing:
            raise ValueError(f"Missing input(s) {sorted(missing)} for signature {signature_name}")
        tensors = {key: tf.constant(np.asarray(value), dtype=specs[key].dtype) for key, value in inputs.items()}
        return {key: value.numpy() for key, value in signature(**tensors).items()}


class RestStandIn:
    """A stand-in for TF Serving's REST API on 127.0.0.1:<free port>."""

    def __init__(self, model_name, saved_model_dir):
        model = _Model(model_name, saved_model_dir)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                expected = f"/v1/models/{model.name}:predict"
                if self.path != expected:
                    return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                signature_name = body.get("signature_name", "serving_default")
                try:
                    if "instances" in body:
                        instances = body["instances"]
                        if instances and isinstance(instances[0], dict):
                            inputs = {k: [row[k] for row in instances] for k in instances[0]}
                        else:
                            inputs = {self._only_input(signature_name): instances}
                        outputs = model.run(signature_name, inputs)
                        rows = [{k: v[i].tolist() for k, v in outputs.items()} for i in range(len(instances))]
                        return self._answer(200, {"predictions": rows})
                    outputs = model.run(signature_name, body["inputs"])
                    return self._answer(200, {"outputs": {k: v.tolist() for k, v in outputs.items()}})
                except (ValueError, tf.errors.InvalidArgumentError) as error:
                    return self._answer(400, {"error": str(error)})

            def _only_input(self, signature_name):
                (name,) = model.loaded.signatures[signature_name].structured_input_signature[1]
                return name

            def _answer(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class GrpcStandIn:
    """A stand-in for TF Serving's gRPC PredictionService on 127.0.0.1:<free port>."""

    def __init__(self, model_name, saved_model_dir):
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        model = _Model(model_name, saved_model_dir)

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                if request.model_spec.name != model.name:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
                inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
                try:
                    outputs = model.run(request.model_spec.signature_name or "serving_default", inputs)
                except (ValueError, tf.errors.InvalidArgumentError) as error:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                response = predict_pb2.PredictResponse()
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop(grace=None)
