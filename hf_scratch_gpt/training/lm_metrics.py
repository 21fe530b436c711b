"""Perplexity, nats per character and bits per byte from the validation loss.

Loss per token depends on the tokenizer (a bigger vocabulary packs more text into each token), so runs with
different tokenizers compare on the text instead: the *total* validation loss (mean loss per predicted token
times the number of predicted tokens) divided by the number of characters, or bytes, those tokens cover
(counted in hf_scratch_gpt.data.lm). A character-level model's loss per token *is* its nats per character.

Usage:

    >>> from hf_scratch_gpt.data.lm import TextUnits
    >>> from hf_scratch_gpt.training.lm_metrics import language_model_metrics
    >>> m = language_model_metrics(2.0, TextUnits(n_predicted_tokens=100, n_chars=400, n_bytes=400))
    >>> m["nats_per_char"], round(m["bits_per_byte"], 4), round(m["perplexity"], 3)
    (0.5, 0.7213, 7.389)
"""

import math

from hf_scratch_gpt.data.lm import TextUnits


def language_model_metrics(mean_token_loss: float, units: TextUnits) -> dict[str, float]:
    """Perplexity, nats per character and bits per byte of an evaluation set, from its mean token loss."""
    total_nats = mean_token_loss * units.n_predicted_tokens
    return {
        "perplexity": math.exp(min(mean_token_loss, 700.0)),  # exp overflows a float above ~709
        "nats_per_char": total_nats / units.n_chars if units.n_chars else float("nan"),
        "bits_per_byte": total_nats / math.log(2) / units.n_bytes if units.n_bytes else float("nan"),
        "tokens_per_char": units.n_predicted_tokens / units.n_chars if units.n_chars else float("nan"),
    }
