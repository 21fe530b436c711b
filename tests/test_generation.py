"""generate() with ScratchGPT: every decoding strategy, checked against GPT-2 with the same weights and against
itself without a cache."""

import copy
from threading import Thread

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    ContinuousBatchingConfig,
    DynamicCache,
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    StaticCache,
    TextIteratorStreamer,
)

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.gpt2 import from_gpt2
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM

VOCAB = 97


@pytest.fixture(scope="module")
def pair() -> tuple[GPT2LMHeadModel, ScratchGPTForCausalLM]:
    """A random GPT-2 and ScratchGPT holding the same weights."""
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_head=4,
        n_embd=32,
        vocab_size=VOCAB,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    gpt2 = GPT2LMHeadModel(config).eval()
    return gpt2, from_gpt2(gpt2).eval()


def prompt(batch: int = 1, length: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(1, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def new_tokens(model, ids: torch.Tensor, **settings) -> torch.Tensor:
    return model.generate(ids, attention_mask=torch.ones_like(ids), **settings)[:, ids.shape[1] :]


def test_greedy_generation_is_identical_to_gpt2(pair):
    gpt2, ours = pair
    ids = prompt(2, 7)
    settings = dict(max_new_tokens=40, min_new_tokens=40, do_sample=False)
    assert torch.equal(new_tokens(ours, ids, **settings), new_tokens(gpt2, ids, **settings))


def test_kv_cache_on_equals_cache_off(pair):
    _, ours = pair
    ids = prompt(1, 5)
    settings = dict(max_new_tokens=60, min_new_tokens=60, do_sample=False)
    with_cache = new_tokens(ours, ids, use_cache=True, **settings)
    without = new_tokens(ours, ids, use_cache=False, **settings)
    assert with_cache.shape == (1, 60)
    assert torch.equal(with_cache, without)


def test_generation_accepts_a_plain_transformers_dynamic_cache(pair):
    _, ours = pair
    ids = prompt(1, 5)
    settings = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False)
    assert torch.equal(
        new_tokens(ours, ids, cache=DynamicCache(), **settings), new_tokens(ours, ids, **settings)
    )


def test_greedy_tokens_are_the_same_with_no_cache_dynamic_static_and_continuous_batching(pair):
    gpt2, ours = pair
    rows = [prompt(1, n, seed=n)[0] for n in (3, 9, 12)]  # mixed lengths
    settings = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False)
    for row in rows:
        expected = new_tokens(ours, row[None], use_cache=False, **settings)
        assert torch.equal(new_tokens(ours, row[None], **settings), expected)  # DynamicCache
        static = new_tokens(ours, row[None], cache_implementation="static", **settings)
        assert torch.equal(static, expected)
        assert torch.equal(new_tokens(gpt2, row[None], **settings), expected)
    assert_continuous_batching_is_greedy(ours, rows, new=12)


def assert_continuous_batching_is_greedy(model, rows: list[torch.Tensor], new: int) -> None:
    """transformers' continuous batching (a paged KV cache, positions and the kernel from transformers: "sdpa"
    itself, or "paged|eager" for eager) gives each row the tokens of its own greedy generate() without a cache."""
    config = GenerationConfig(max_new_tokens=new, do_sample=False, eos_token_id=-1, pad_token_id=0)
    # Sized for these prompts: left to size itself on a CPU, the paged cache reserves a share of the machine's memory.
    pages = ContinuousBatchingConfig(page_size=16, num_blocks=2 * len(rows), max_batch_tokens=64)
    results = model.generate_batch(
        [row.tolist() for row in rows],
        generation_config=config,
        continuous_batching_config=pages,
        progress_bar=False,
        warmup=False,
    )
    assert len(results) == len(rows)
    for result in results.values():
        assert result.error is None
        row = torch.tensor(result.prompt_ids)
        greedy = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False)
        expected = new_tokens(model, row[None], use_cache=False, **greedy)[0]
        assert result.generated_tokens == expected.tolist()


def test_continuous_batching_with_the_eager_kernel(pair):
    _, ours = pair
    eager = copy.deepcopy(ours)
    eager.set_attn_implementation("eager")  # continuous batching then runs "paged|eager"
    assert_continuous_batching_is_greedy(eager, [prompt(1, n, seed=n)[0] for n in (4, 11)], new=8)


def test_a_static_cache_decoding_step_compiles_with_fullgraph(pair):
    _, ours = pair
    ids = prompt(1, 6)
    cache = StaticCache(config=ours.config, max_cache_len=16)
    with torch.no_grad():
        out = ours(ids, cache=cache, use_cache=True)
        step = torch.compile(ours, fullgraph=True, dynamic=False)  # a graph break would raise
        next_id = out.logits[:, -1:].argmax(-1)
        position = torch.tensor([[ids.shape[1]]])
        compiled = step(next_id, cache=cache, position_ids=position, use_cache=True).logits
    assert ours._can_compile_fullgraph
    expected = ours(torch.cat([ids, next_id], dim=1), use_cache=False).logits[:, -1:]
    torch.testing.assert_close(compiled, expected, rtol=0, atol=1e-5)


def test_left_padded_batch_generates_what_each_row_generates_alone(pair):
    _, ours = pair
    rows = [prompt(1, n, seed=n)[0] for n in (3, 8, 5)]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)  # pad id 0
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :], mask[i, width - len(row) :] = row, 1
    settings = dict(max_new_tokens=15, min_new_tokens=15, do_sample=False, pad_token_id=0)
    batched = ours.generate(ids, attention_mask=mask, **settings)[:, width:]
    for i, row in enumerate(rows):
        assert torch.equal(batched[i], new_tokens(ours, row[None], **settings)[0]), f"row {i}"


def test_sampling_is_reproducible_under_a_seed_and_matches_gpt2(pair):
    gpt2, ours = pair
    ids = prompt(2, 4)
    settings = dict(max_new_tokens=25, do_sample=True, temperature=0.8, top_k=30, top_p=0.9)
    samples = []
    for model in (ours, ours, gpt2):
        torch.manual_seed(1234)
        samples.append(new_tokens(model, ids, **settings))
    assert torch.equal(samples[0], samples[1])
    assert torch.equal(samples[0], samples[2])  # same probabilities, same random draws
    torch.manual_seed(999)
    assert not torch.equal(new_tokens(ours, ids, **settings), samples[0])


def test_beam_search_equals_gpt2_beam_search(pair):
    gpt2, ours = pair
    ids = prompt(2, 5)
    settings = dict(
        max_new_tokens=12, num_beams=4, num_return_sequences=2, do_sample=False, early_stopping=True
    )
    beams = new_tokens(ours, ids, **settings)
    assert beams.shape[0] == 4
    assert torch.equal(beams, new_tokens(gpt2, ids, **settings))


def test_text_iterator_streamer_streams_the_generated_text():
    texts = ["the quick brown fox jumps over the lazy dog. "] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    torch.manual_seed(0)
    config = ScratchGPTConfig(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=len(tokenizer),
        n_positions=64,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = ScratchGPTForCausalLM(config).eval()
    inputs = tokenizer("the quick", return_tensors="pt")
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    settings = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False)
    thread = Thread(target=model.generate, kwargs=dict(**inputs, streamer=streamer, **settings))
    thread.start()
    chunks = list(streamer)
    thread.join()
    expected = model.generate(**inputs, **settings)[0, inputs.input_ids.shape[1] :]
    assert len(chunks) > 1  # arrived piece by piece
    assert "".join(chunks) == tokenizer.decode(expected)


def test_generating_past_n_positions_is_a_clear_error(pair):
    _, ours = pair
    with pytest.raises(ValueError, match=r"exceeds n_positions=128"):
        ours.generate(prompt(1, 120), max_new_tokens=20, min_new_tokens=20, do_sample=False)
