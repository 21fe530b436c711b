"""The recipes: one training command per stage, each a short `main()` over the shared run lifecycle.

    pretrain.py             stage 5: tokenizer + GPT from scratch, next-token prediction (the main job)
    finetune_classifier.py  stage 6: sequence classification (the book's spam classifier)
    finetune_instruct.py    stage 6: instruction finetuning into a chat model
    finetune_preference.py  stage 6: preference tuning with DPO (TRL)

Each runs as a script (`python recipes/pretrain.py --help`, or under `accelerate launch`), and each module has
`parse_args(argv)` and `main(*parsed)`, so code (and the tests) can call a recipe directly:

    from recipes import pretrain
    metrics = pretrain.main(*pretrain.parse_args(["--output_dir", "outputs/pretrain"]))
"""
