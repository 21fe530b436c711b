"""The Ollama `Modelfile` written beside a GGUF export: `ollama create NAME -f DIR/Modelfile`, then `ollama run NAME`.

Ollama renders a chat with a Go `text/template`, not Jinja, so our chat format (`CHAT_TEMPLATE` in
scratch_tokenizer/hf_tokenizer.py) is spelled again here, from the same markers:

    {system}\\n\\n### User:\\n{user}\\n\\n### Assistant:\\n{answer}<eos>\\n\\n ... ### Assistant:\\n

Each message in turn, then the prompt the model answers (what `add_generation_prompt=True` appends). The tests
render both templates on the same conversations and compare. A tokenizer with another chat template gets no
TEMPLATE line: Ollama then picks one from the GGUF's own `tokenizer.chat_template`, as it does for any GGUF.

The parameters: stop at the eos token and at "### User:" (a model that forgets eos starts the next turn);
`num_ctx` is the checkpoint's context, because GPT-2's learned position embeddings have no row past it and
Ollama's default context is larger; temperature 0 answers greedily, as the recipes' evaluation does.
"""

from pathlib import Path

from scratch_tokenizer.hf_tokenizer import CHAT_TEMPLATE, serving_chat_template

MODELFILE = "Modelfile"
USER_MARKER = "### User:"


def go_chat_template(eos_token: str) -> str:
    """CHAT_TEMPLATE in Go's text/template, over Ollama's `.Messages` (each with `.Role` and `.Content`)."""
    return (
        "{{ range .Messages }}"
        '{{ if eq .Role "system" }}{{ .Content }}\n\n'
        f'{{{{ else if eq .Role "user" }}}}{USER_MARKER}\n{{{{ .Content }}}}\n\n'
        f'{{{{ else if eq .Role "assistant" }}}}### Assistant:\n{{{{ .Content }}}}{eos_token}\n\n'
        "{{ end }}{{ end }}"
        "### Assistant:\n"
    )


def modelfile_text(gguf_name: str, tokenizer, n_positions: int) -> str:
    """The Modelfile for `gguf_name` (a file in the same folder)."""
    lines = [
        "# Ollama model: ollama create NAME -f Modelfile (written by python -m hf_scratch_gpt.convert --to_gguf)",
        f"FROM ./{gguf_name}",
    ]
    ours = tokenizer.chat_template in (CHAT_TEMPLATE, serving_chat_template(CHAT_TEMPLATE))
    if ours and tokenizer.eos_token:
        lines.append(f'TEMPLATE """{go_chat_template(tokenizer.eos_token)}"""')
    stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    lines += [f'PARAMETER stop "{stop}"' for stop in [*stops, USER_MARKER]]
    lines += [f"PARAMETER num_ctx {n_positions}", "PARAMETER temperature 0"]
    return "\n".join(lines) + "\n"


def write_modelfile(folder: Path, gguf_name: str, tokenizer, n_positions: int) -> Path:
    path = folder / MODELFILE
    path.write_text(modelfile_text(gguf_name, tokenizer, n_positions), encoding="utf-8")
    return path
