"""Placeholder stock layers (replaced by the fast versions)."""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="recsys_nb")
class DownConv(layers.Conv2D):
    def __init__(self, filters, activation="relu", **kwargs):
        kwargs.setdefault("kernel_size", 3)
        kwargs.setdefault("strides", 2)
        kwargs.setdefault("padding", "same")
        super().__init__(filters, activation=activation, **kwargs)


@keras.saving.register_keras_serializable(package="recsys_nb")
class UpConv(layers.Conv2DTranspose):
    def __init__(self, filters, activation="relu", **kwargs):
        kwargs.setdefault("kernel_size", 3)
        kwargs.setdefault("strides", 2)
        kwargs.setdefault("padding", "same")
        super().__init__(filters, activation=activation, **kwargs)


@keras.saving.register_keras_serializable(package="recsys_nb")
class OutConv(layers.Conv2D):
    def __init__(self, filters, activation="sigmoid", **kwargs):
        kwargs.setdefault("kernel_size", 3)
        kwargs.setdefault("padding", "same")
        super().__init__(filters, activation=activation, **kwargs)
