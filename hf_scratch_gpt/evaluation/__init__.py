"""Stage 7, evaluation: how good a trained model is at what it was trained for.

classification.py  accuracy, F1, the confusion matrix and the test predictions of a classifier
instruction.py     greedy answers to held-out prompts: exact match, ROUGE-L, EOS rate, degeneracy, LLM judge
preference.py      how often a model ranks the chosen answer of a pair above the rejected one
metrics/           the `evaluate` metric modules, loaded by path so they work offline
lm_eval_tasks/     lm-evaluation-harness tasks on local files
"""
