"""Print the folder of our lm-eval task YAMLs, for `lm_eval --include_path "$(python -m hf_scratch_gpt.evaluation.lm_eval_tasks)"`."""

from hf_scratch_gpt.evaluation.lm_eval_tasks import TASKS_DIR

if __name__ == "__main__":  # importing it (a tool walking the package) prints nothing
    print(TASKS_DIR)
