"""The built-in training corpus: text present on every machine that has Python, so nothing is downloaded.

It is CPython's interactive help on the language (what `help("assert")`, `help("for")` or
`help("FORMATTING")` print): the 79 topics of `pydoc_data.topics`, about 465,000 characters of
human-written English prose with Python examples, under the PSF license (part of CPython's documentation).

Why this one: every CPython installation ships it (it is in the standard library, including Debian's
`libpython3.x-stdlib`), it is real edited prose rather than generated text, and it is license-clean.
Alternatives were worse: NLTK or Gutenberg corpora need a download; stdlib docstrings need hundreds of
module imports (slow, with side effects) and are mostly one-line fragments; the bundled license texts are
short and repetitive. It is small, so it suits demos and tests; train real tokenizers on real data.

    >>> from scratch_tokenizer.default_corpus import default_corpus_text
    >>> text = default_corpus_text()
    >>> len(text) > 400_000, 'assert_stmt' in text
    (True, True)
"""


def default_corpus_documents() -> list[str]:
    """The help topics, one document each, in a fixed order (sorted by topic name)."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some stripped-down Pythons drop it
        raise RuntimeError(
            "this Python has no pydoc_data module, the built-in default corpus: pass training files instead "
            "(python -m scratch_tokenizer.train FILE ...)"
        ) from err
    return [topics[name] for name in sorted(topics)]


def default_corpus_text() -> str:
    """The whole default corpus as one string, topics separated by a blank line."""
    return "\n\n".join(default_corpus_documents())
