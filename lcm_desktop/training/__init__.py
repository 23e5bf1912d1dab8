"""Teaching a model a style from the user's pictures: Latent Consistency Fine-tuning (LCF) into a LoRA.

``lcf`` (the loss and one step), ``data`` (a folder of captioned pictures), ``checkpoint`` (resumable state in
safetensors + JSON), ``style_file`` (the finished LoRA with its metadata), ``trainer`` (the run).  A floor between
the front ends (cli, gui) and ``engine | models``: it may import those and ``core``, never Qt.
"""
