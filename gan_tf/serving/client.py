"""Clients for a generator served by TensorFlow Serving, over REST and gRPC.

Both speak TF Serving's documented Predict API and return numpy arrays keyed by output name
(`images`, `images_uint8`):

* REST: `POST http://HOST:8501/v1/models/<model_name>:predict` with a JSON body in the row
  ("instances") or columnar ("inputs") form; the answer is `{"predictions": ...}` or
  `{"outputs": ...}` respectively.
* gRPC: `tensorflow.serving.PredictionService/Predict` on port 8500 with a `PredictRequest`.

Example:
    >>> inputs = sample_inputs(num_samples=16, seed=0)           # the `sample_seeded` signature
    >>> outputs = predict_rest("localhost:8501", "dcgan", inputs, "sample_seeded")
    >>> outputs["images_uint8"].shape                               # (16, 28, 28, 1)
"""

import json
import re
import urllib.error
import urllib.request

import numpy as np


class ServingError(RuntimeError):
    """TF Serving answered with an error, or could not be reached."""


def signature_error_message(text):
    """The useful line of a TensorFlow error raised by a signature's input checks.

    TensorFlow wraps a failed `tf.debugging` assertion in "Graph execution error: ... assertion
    failed: [<message>] ..."; this returns `<message>`, or the first informative line of any
    other error.
    """
    match = re.search(r"assertion failed: \[([^\]]*)\]", text)
    if match:
        return match.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    informative = [l for l in lines if not l.startswith(("Graph execution error", "Detected at node", "<stack", "[["))]
    return informative[0] if informative else text.strip()


def sample_inputs(num_samples, labels=None, seed=None, truncation=None):
    """Inputs of the `sample` (no seed) or `sample_seeded` signature, and that signature's name.

    `truncation` is for exports whose metadata has `truncation_input` (BigGAN): give it (0 for
    untruncated noise) exactly when the export takes it.

    Returns:
        `(signature_name, inputs)`.
    """
    inputs = {"num_samples": np.int32(num_samples)}
    if labels is not None:
        inputs["labels"] = np.asarray(labels, np.int32).reshape(-1)
    if truncation is not None:
        inputs["truncation"] = np.float32(truncation)
    if seed is None:
        return "sample", inputs
    inputs["seed"] = np.int64(seed)
    return "sample_seeded", inputs


def rest_request_body(inputs, signature_name="serving_default", form="inputs"):
    """The JSON body of a REST predict request.

    Args:
        inputs: dict of input name -> array.
        signature_name: which signature to run.
        form: "instances" (row form: one object per example; every input must share its first
            dimension) or "inputs" (columnar form: any shapes, scalars included).

    Returns:
        A JSON-able dict.
    """
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    if form == "inputs":
        return {"signature_name": signature_name, "inputs": {k: v.tolist() for k, v in arrays.items()}}
    if form != "instances":
        raise ValueError(f"form must be 'instances' or 'inputs'. Received: {form!r}")
    lengths = {name: (v.shape[0] if v.ndim else None) for name, v in arrays.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise ValueError(
            "The 'instances' form needs every input batched with the same first dimension; "
            f"got {lengths}. Use form='inputs' for scalar inputs such as num_samples."
        )
    count = next(iter(lengths.values()))
    if len(arrays) == 1:
        instances = next(iter(arrays.values())).tolist()
    else:
        instances = [{name: v[i].tolist() for name, v in arrays.items()} for i in range(count)]
    return {"signature_name": signature_name, "instances": instances}


def parse_rest_response(response):
    """Numpy outputs from a REST predict response (either form), keyed by output name.

    Raises:
        ServingError: when the response carries an `error`.
    """
    if "error" in response:
        raise ServingError(f"TF Serving error: {signature_error_message(response['error'])}")
    if "outputs" in response:
        outputs = response["outputs"]
        if not isinstance(outputs, dict):
            outputs = {"output": outputs}
        return {name: np.asarray(value) for name, value in outputs.items()}
    if "predictions" in response:
        predictions = response["predictions"]
        if predictions and isinstance(predictions[0], dict):
            return {name: np.asarray([row[name] for row in predictions]) for name in predictions[0]}
        return {"output": np.asarray(predictions)}
    raise ServingError(f"Not a predict response: keys {sorted(response)}")


def predict_rest(server, model_name, inputs, signature_name="serving_default", form="inputs", timeout=30.0):
    """Runs a signature through TF Serving's REST API (`server` is "host:port", port 8501)."""
    url = f"http://{server}/v1/models/{model_name}:predict"
    body = json.dumps(rest_request_body(inputs, signature_name, form)).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        try:
            answer = json.load(error)
        except ValueError:
            raise ServingError(f"{url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ServingError(f"Cannot reach TF Serving at {url}: {error}") from None
    outputs = parse_rest_response(answer)
    if "images_uint8" in outputs:  # JSON carries numbers; restore the signature's dtype
        outputs["images_uint8"] = outputs["images_uint8"].astype(np.uint8)
    return outputs


def grpc_predict_request(model_name, inputs, signature_name="serving_default"):
    """A `tensorflow.serving.PredictRequest` for the given inputs."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    return request


def parse_grpc_response(response):
    """Numpy outputs from a `PredictResponse`, keyed by output name."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_grpc(server, model_name, inputs, signature_name="serving_default", timeout=30.0):
    """Runs a signature through TF Serving's gRPC API (`server` is "host:port", port 8500)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = grpc_predict_request(model_name, inputs, signature_name)
    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            message = signature_error_message(error.details() or "")
            raise ServingError(f"TF Serving at {server}: {error.code().name}: {message}") from None
    return parse_grpc_response(response)
