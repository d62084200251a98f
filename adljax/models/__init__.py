"""Model families as Flax Linen modules, activations by name, and the model registry.

Synopsis::

    model = MLP(hidden_sizes=(64,), num_outputs=10)      # or create_model("mlp", ...)
    variables = model.init(jax.random.key(0), x, train=False)
    logits, updates = model.apply(variables, x, train=True, rngs={"dropout": key},
                                  mutable=["batch_stats"])
"""

from adljax.models import torch_weights as torch_weights
from adljax.models.activations import ACTIVATIONS as ACTIVATIONS
from adljax.models.activations import get_activation as get_activation
from adljax.models.cnn import VGG as VGG
from adljax.models.cnn import LeNet5 as LeNet5
from adljax.models.cnn import SimpleCNN as SimpleCNN
from adljax.models.cnn import torch_flatten_permutation as torch_flatten_permutation
from adljax.models.detector import DetectionHead as DetectionHead
from adljax.models.detector import Detector as Detector
from adljax.models.detector import detector_points as detector_points
from adljax.models.gan import DCGAN as DCGAN
from adljax.models.gan import GAN as GAN
from adljax.models.linear import LinearRegression as LinearRegression
from adljax.models.mlp import MLP as MLP
from adljax.models.recurrent import CharLM as CharLM
from adljax.models.recurrent import Recurrent as Recurrent
from adljax.models.recurrent import SequenceModel as SequenceModel
from adljax.models.registry import create_model as create_model
from adljax.models.registry import list_models as list_models
from adljax.models.registry import model_config as model_config
from adljax.models.registry import model_parameters as model_parameters
from adljax.models.registry import register_model as register_model
from adljax.models.registry import registered_name as registered_name
from adljax.models.resnet import BottleneckResNetBlock as BottleneckResNetBlock
from adljax.models.resnet import ResNet as ResNet
from adljax.models.resnet import ResNet18 as ResNet18
from adljax.models.resnet import ResNet34 as ResNet34
from adljax.models.resnet import ResNet50 as ResNet50
from adljax.models.resnet import ResNetBlock as ResNetBlock
