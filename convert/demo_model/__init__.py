"""Our own tiny text-to-image Latent Consistency Model, trained and distilled on a CPU.

Stages (``python -m convert.demo_model <stage>``): ``train-vae`` → ``train-teacher`` →
``distill`` → ``export`` → ``eval``; ``all`` runs them in order from scratch. See
``docs/DEMO_MODEL.md`` for the model card.
"""
