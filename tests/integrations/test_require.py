"""A missing optional dependency names the gpbo extra to install."""

from __future__ import annotations

import re

import pytest

from gpbo.integrations import require


def test_missing_module_names_the_extra():
    message = 'install it with: pip install "gpbo[ray]"'
    with pytest.raises(ImportError, match=re.escape(message)):
        require("surely_not_an_installed_module", "ray")


def test_installed_module_is_returned():
    assert require("math", "none").sqrt(4.0) == 2.0
