"""lm-evaluation-harness tasks on local files, for our checkpoints (or any causal LM): `--include_path` this folder.

Three tasks, each reading the file named by lm-eval's `--metadata` (a JSON object; every task gets the whole
object, so one command can run several tasks):

- `scratch_gpt_text` (`loglikelihood_rolling`): the text file given as `text_file`, as one document: word and
  byte perplexity and bits per byte. The windows are the model's context, each scored from its start, as
  recipes/pretrain.py scores its validation blocks.
- `scratch_gpt_preference` (`multiple_choice`, two choices): the held-out test pairs of a preference file
  (`preference_file`, the book's split: records 85% to 95%, as recipes/finetune_preference.py cuts them, pairs
  with identical answers skipped; `preference_split: "all"` for every record). The prompt is rendered with the
  model's chat template (ours if it has none); `acc` is the share of pairs whose chosen answer has the higher
  log-likelihood, `acc_norm` the same per character (lm-eval's normalisation).
- `scratch_gpt_labelled` (`multiple_choice`): texts with labels (`labelled_file`: a headerless `label<TAB>text`
  file such as SMSSpamCollection, or any csv / json / tsv file with `label` and `text` columns); the choices are the
  distinct labels. `labelled_split: "book_spam_test"` takes the book's balanced 300-message test split of the
  SMS Spam Collection (its training split feeds `--num_fewshot`).

    lm_eval --model hf --model_args pretrained=outputs/pretrain,trust_remote_code=True \\
        --include_path "$(python -m hf_scratch_gpt.evaluation.lm_eval_tasks)" --tasks scratch_gpt_text \\
        --metadata '{"text_file": "../shared/data/the-verdict.txt"}'
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
TASK_NAMES = ("scratch_gpt_text", "scratch_gpt_preference", "scratch_gpt_labelled")
