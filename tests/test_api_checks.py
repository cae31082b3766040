"""Misspelt constructor names, unusable devices, and predict_proba without a classifier task."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sk_mmoe import MMoERegressorClassifier


@pytest.mark.parametrize(
    "name, hint",
    [("n_expert", "did you mean 'n_experts'"), ("optimizer_weight_decay", "optimizer__"),
     ("dataset__X", "iterator_train__"), ("warm_start_", "")],
)
def test_unknown_constructor_names_raise_type_error(name, hint):
    with pytest.raises(TypeError, match=rf"unexpected keyword argument\(s\) '{name}'.*{hint}"):
        MMoERegressorClassifier(**{name: 1})


def test_routed_names_are_accepted_and_survive_clone():
    model = MMoERegressorClassifier(
        optimizer__weight_decay=0.1,
        iterator_train__batch_size=32,
        iterator_valid__batch_size=64,
        callbacks__print_log__color=False,
    )
    params = clone(model).get_params(deep=False)
    assert params["optimizer__weight_decay"] == 0.1
    assert params["iterator_train__batch_size"] == 32
    assert params["callbacks__print_log__color"] is False


@pytest.mark.parametrize(
    "device, message",
    [
        (None, "'device' parameter .* must be an instance of 'str'"),
        ("meta", "device='meta' holds tensor shapes without data"),
        ("gpu", "device='gpu' is not a torch device"),
        ("cuda:99", "device='cuda:99'"),
    ],
)
def test_unusable_devices_are_named(device, message):
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match=message):
        MMoERegressorClassifier(device=device, max_epochs=1).fit(X, X[:, 0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without usable CUDA")
def test_cuda_without_a_gpu_says_so():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"device='cuda', but torch .* cannot use CUDA here.*device='cpu'"):
        MMoERegressorClassifier(device="cuda", max_epochs=1).fit(X, X[:, 0])


def test_predict_proba_on_regression_only_says_why():
    X = np.random.RandomState(0).normal(size=(30, 3))
    model = MMoERegressorClassifier(n_experts=2, max_epochs=1, random_state=0)
    model.fit(X, X[:, :2])
    assert not hasattr(model, "predict_proba")
    with pytest.raises(AttributeError, match=r"every task of this model predicts a quantity \(0, 1\)"):
        model.predict_proba(X)
    # Unfitted, it exists and raises NotFittedError when called, as scikit-learn expects.
    assert hasattr(MMoERegressorClassifier(), "predict_proba")


def test_string_classes_are_object_arrays_of_str_like_scikit_learn():
    import pandas as pd

    X = np.random.RandomState(0).normal(size=(40, 2))
    y = pd.DataFrame({"colour": np.array(["red", "blue"])[(X[:, 0] > 0).astype(int)],
                      "size": pd.Series(np.where(X[:, 1] > 0, "S", "L"), dtype="str")})
    model = MMoERegressorClassifier(n_experts=2, max_epochs=1, random_state=0).fit(X, y)
    for classes in model.classes_:
        assert classes.dtype == object and all(type(c) is str for c in classes)
    assert repr(model.classes_[0]) == "array(['blue', 'red'], dtype=object)"
    one_d = MMoERegressorClassifier(n_experts=2, max_epochs=1, random_state=0)
    pred = one_d.fit(X, y["colour"].to_numpy(dtype=str)).predict(X[:3])
    assert pred.dtype == object and type(pred[0]) is str


def test_set_params_refuses_unknown_names_as_scikit_learn_does():
    from sk_mmoe import MMoERegressorClassifier

    model = MMoERegressorClassifier()
    # A Pipeline step's prefix on the bare estimator was stored silently and ignored.
    with pytest.raises(ValueError, match=r"Invalid parameter 'mmoe' for estimator MMoERegressorClassifier.*'mmoe__' is not a prefix"):
        model.set_params(mmoe__n_experts=4)
    with pytest.raises(ValueError, match=r"Invalid parameter 'n_expert'.*'n_experts'"):
        model.set_params(n_expert=4)
    assert "mmoe__n_experts" not in model.get_params() and model.n_experts == 8
    # Routed parameters stay accepted.
    model.set_params(optimizer__weight_decay=0.1, iterator_train__shuffle=True,
                     callbacks__print_log__sink=print, n_experts=4)
    assert model.get_params()["optimizer__weight_decay"] == 0.1 and model.n_experts == 4
