"""Print the folder of our lm-eval task YAMLs, for `lm_eval --include_path "$(python -m hf_scratch_gpt.evaluation.lm_eval_tasks)"`."""

from hf_scratch_gpt.evaluation.lm_eval_tasks import TASKS_DIR

print(TASKS_DIR)
