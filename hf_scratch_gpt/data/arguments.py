"""The data flags every recipe shares: where the data comes from (a Hub dataset or local files) and how much of it
to use. The names follow transformers' run_clm.py / run_classification.py."""

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    """Where the data comes from (a Hub dataset or local files) and how much of it to use."""

    dataset_name: str | None = field(default=None, metadata={"help": "Dataset on the Hugging Face Hub."})
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration of --dataset_name."}
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Local training file: .txt, .csv, .tsv, .json, .jsonl or .parquet."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Local validation file (same types)."}
    )
    test_file: str | None = field(default=None, metadata={"help": "Local test file (same types)."})
    text_column_name: str = field(default="text", metadata={"help": "Column holding the text."})
    validation_split_percentage: float = field(
        default=10.0,
        metadata={
            "help": "Percentage of the training rows held out for validation when no validation split "
            "exists (pretraining takes the last rows, finetuning a random sample)."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training rows (quick runs, debugging)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N validation / test rows."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization (datasets.map num_proc)."}
    )
