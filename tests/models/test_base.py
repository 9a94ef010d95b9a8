"""MultimodalModel's own checks."""

import re

import pytest

from robustfusion.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("bad", ["values", "keys", "a.b"])
def test_modality_names_that_break_module_dicts_are_refused(name, bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        create_model(name, modality_dims={bad: 4, "audio": 3})
