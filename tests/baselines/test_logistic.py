"""Per-subset multinomial logistic specialists against scikit-learn's LogisticRegression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustfusion.baselines import fit_logistic_specialist, fit_logistic_specialists
from robustfusion.batch import MultimodalBatch
from robustfusion.data.synthetic import load_synthetic
from robustfusion.dropping import keep_subset

sk_linear = pytest.importorskip("sklearn.linear_model")


@pytest.fixture(scope="module")
def splits():
    return load_synthetic(n_train=300, n_valid=150, n_test=150, target="emotion", seed=3)


@pytest.mark.parametrize("subset", ["text", "audio+vision", "text+audio+vision"])
def test_matches_sklearn_on_the_same_features(splits, subset):
    train, valid = splits["train"], splits["valid"]
    spec = fit_logistic_specialist(train, valid, subset)
    z, _ = spec.standardise(train.full_batch())
    zt, _ = spec.standardise(splits["test"].full_batch())
    ref = sk_linear.LogisticRegression(C=1.0 / (len(train) * spec.alpha), tol=1e-10, max_iter=10000)
    ref.fit(z.numpy(), train.targets.numpy())
    ours = torch.softmax(spec.predict(splits["test"].full_batch()).double(), dim=1).numpy()
    np.testing.assert_allclose(ours, ref.predict_proba(zt.numpy()), atol=2e-3)
    assert spec.alpha == min(spec.val_scores, key=spec.val_scores.get)


def test_router_routes_each_presence_pattern_and_refuses_regression(splits):
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    router = fit_logistic_specialists(train, valid)
    batch = test.full_batch()
    only_text = keep_subset(batch, ("text",))
    np.testing.assert_allclose(router.predict(only_text).numpy(),
                               router[("text",)].predict(only_text).numpy())
    # absent modalities' stored values do not matter
    junk = MultimodalBatch({m: x if m == "text" else torch.randn_like(x) * 100 for m, x in only_text.inputs.items()},
                           present=only_text.present, frame_masks=only_text.frame_masks)
    np.testing.assert_allclose(router.predict(junk).numpy(), router.predict(only_text).numpy())
    reg = load_synthetic(n_train=30, n_valid=20, n_test=20)
    with pytest.raises(ValueError, match="classification"):
        fit_logistic_specialist(reg["train"], reg["valid"], "text")
