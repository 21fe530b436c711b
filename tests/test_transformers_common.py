"""transformers' own common model tests (`ModelTesterMixin` from its source distribution) on ScratchGPT, with
transformers' GPT-2 run through the very same tests as the standard.

The issue's contract: every common test that passes on GPT-2 passes on ScratchGPT. Both test classes below share
one tester (tiny sizes, GPT-2's field names, which our config shares), so a difference between them is a
difference between the models. `tests/transformers_suite.py` installs the suite (the README's test command runs
it); without it this module skips.

    .venv/bin/python -m pytest tests/test_transformers_common.py           # ScratchGPT (~20 s on 2 cores)
    .venv/bin/python -m pytest tests/test_transformers_common.py -m slow   # GPT-2's run, and the tests
                                                                           # transformers itself marks slow
"""

import importlib
import sys
import types
import unittest
import warnings
from unittest import mock

import pytest
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel, GPT2Model
from transformers.models.auto import modeling_auto
from transformers_suite import PACKAGE, suite_dir

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import (
    ScratchGPTForCausalLM,
    ScratchGPTForSequenceClassification,
    ScratchGPTModel,
)

SUITE = suite_dir()
if not (SUITE / PACKAGE / "test_modeling_common.py").is_file():
    pytest.skip(
        f"transformers' common model tests are not installed in {SUITE}: run "
        "`.venv/bin/python tests/transformers_suite.py` once (it fetches transformers' sdist with pip)",
        allow_module_level=True,
    )


STAND_IN = "stand-in: absent from transformers' sdist"


def import_suite() -> types.ModuleType:
    """test_modeling_common, importable from the unpacked sdist."""
    if str(SUITE) not in sys.path:
        sys.path.insert(0, str(SUITE))
    # The sdist holds tests/test_modeling_common.py but not the two modules it takes mixins from
    # (tests/generation/test_utils.py, tests/exporters/test_export.py). Empty mixins stand in for them, so their
    # tests (generate, torch.export) are not run here; tests/test_generation.py covers generate against GPT-2.
    # (Its ConfigTester is not usable either: test_configuration_common imports tests/utils/, also absent.)
    for module_name, mixin_name in (
        ("generation.test_utils", "GenerationTesterMixin"),
        ("exporters.test_export", "ExportTesterMixin"),
    ):
        if not (SUITE / PACKAGE / f"{module_name.replace('.', '/')}.py").is_file():
            package_name, _, _ = module_name.partition(".")
            sys.modules.setdefault(f"{PACKAGE}.{package_name}", types.ModuleType(f"{PACKAGE}.{package_name}"))
            stand_in = types.ModuleType(f"{PACKAGE}.{module_name}")
            setattr(stand_in, mixin_name, type(mixin_name, (), {"__doc__": STAND_IN}))
            sys.modules[f"{PACKAGE}.{module_name}"] = stand_in
    # its marks (flash_attn_test, ...) are registered by transformers' own conftest, which is not ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return importlib.import_module(f"{PACKAGE}.test_modeling_common")


common = import_suite()
GenerationTesterMixin = sys.modules[f"{PACKAGE}.generation.test_utils"].GenerationTesterMixin


class GPTModelTester:
    """Tiny configs and inputs for the common tests: the role transformers' GPT2ModelTester plays for GPT-2,
    written for both models (the config fields are GPT-2's names, which ScratchGPTConfig shares)."""

    batch_size = 3
    seq_length = 7
    is_training = True
    vocab_size = 99
    hidden_size = 32
    num_hidden_layers = 2
    num_attention_heads = 4
    num_labels = 3

    def __init__(self, parent: unittest.TestCase, config_class: type) -> None:
        self.parent, self.config_class = parent, config_class

    def get_config(self):
        return self.config_class(
            vocab_size=self.vocab_size,
            n_positions=64,
            n_embd=self.hidden_size,
            n_layer=self.num_hidden_layers,
            n_head=self.num_attention_heads,
            n_inner=37,
            activation_function="gelu_new",
            resid_pdrop=0.1,
            embd_pdrop=0.1,
            attn_pdrop=0.1,
            initializer_range=0.02,
            num_labels=self.num_labels,
            bos_token_id=self.vocab_size - 1,
            eos_token_id=self.vocab_size - 1,
            pad_token_id=self.vocab_size - 1,
        )

    def prepare_config_and_inputs_for_common(self):
        # ids below the pad id: a sequence-classification head must find the last real token from the mask
        input_ids = common.ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 1)
        attention_mask = common.random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), {"input_ids": input_ids, "attention_mask": attention_mask}


class GPTCommonTests(common.ModelTesterMixin, GenerationTesterMixin):
    """The common tests with our tester; subclasses name the model family."""

    config_class: type
    causal_lm_class: type
    sequence_classification_class: type
    test_resize_embeddings = True
    test_missing_keys = True

    def setUp(self) -> None:
        self.model_tester = GPTModelTester(self, self.config_class)

    def test_generation_tester_mixin_inheritance(self) -> None:
        if GenerationTesterMixin.__doc__ == STAND_IN:
            self.skipTest(
                "GenerationTesterMixin is absent from transformers' sdist: a stand-in cannot be tested"
            )
        super().test_generation_tester_mixin_inheritance()

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # The common tests pick models by role from transformers' name tables (base models are not trained,
        # causal LMs get shifted labels, ...): GPT-2's names are in them, ours are put there for this class.
        for names, model_class in (
            (modeling_auto.MODEL_MAPPING_NAMES, cls.all_model_classes[0]),
            (modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, cls.causal_lm_class),
            (
                modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
                cls.sequence_classification_class,
            ),
        ):
            if model_class.__name__ not in names.values():
                patcher = mock.patch.dict(names, {cls.config_class.model_type: model_class.__name__})
                patcher.start()
                cls.addClassCleanup(patcher.stop)


@pytest.mark.slow
class GPT2ReferenceTest(GPTCommonTests, unittest.TestCase):
    """The standard: the same tests on transformers' GPT-2."""

    config_class = GPT2Config
    causal_lm_class = GPT2LMHeadModel
    sequence_classification_class = GPT2ForSequenceClassification
    all_model_classes = (GPT2Model, GPT2LMHeadModel, GPT2ForSequenceClassification)


class ScratchGPTCommonTest(GPTCommonTests, unittest.TestCase):
    config_class = ScratchGPTConfig
    causal_lm_class = ScratchGPTForCausalLM
    sequence_classification_class = ScratchGPTForSequenceClassification
    all_model_classes = (ScratchGPTModel, ScratchGPTForCausalLM, ScratchGPTForSequenceClassification)
