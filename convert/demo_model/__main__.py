"""``python -m convert.demo_model train-vae|train-teacher|distill|export|eval|img2img|inpaint|all``."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys

STAGES = ("train-vae", "train-teacher", "distill", "export", "eval", "img2img", "inpaint")
TRAINING = ("train-vae", "train-teacher", "distill")


def run_stage(name: str, steps: int | None = None, captions: int | None = None) -> None:
    kwargs = {} if steps is None else {"steps": steps}
    if name == "train-vae":
        from convert.demo_model.vae_stage import train_vae

        train_vae(**kwargs)
    elif name == "train-teacher":
        from convert.demo_model.teacher_stage import train_teacher

        train_teacher(**kwargs)
    elif name == "distill":
        from convert.demo_model.distill_stage import distill

        distill(**kwargs)
    elif name == "export":
        from convert.demo_model.ship import ship

        ship()
    elif name == "eval":
        from convert.demo_model.evaluate import evaluate

        evaluate()
    elif name == "img2img":
        from convert.demo_model.img2img_eval import img2img

        img2img(captions)
    elif name == "inpaint":
        from convert.demo_model.inpaint_eval import inpaint

        inpaint(captions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.demo_model", description=__doc__)
    parser.add_argument("stage", choices=(*STAGES, "all"))
    parser.add_argument("--fresh", action="store_true", help="delete work-demo/ checkpoints first (implied by 'all')")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of a single training stage (default: the stage's own constant); "
                        "a stage resumes from its checkpoint, so a smaller number stops it early")
    parser.add_argument("--captions", type=int, default=None,
                        help="img2img, inpaint: evaluate only the first N held-out captions (default: all 240; "
                        "inpaint: the 192 with the shape in a corner)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.stage not in TRAINING:
        parser.error(f"--steps applies to {', '.join(TRAINING)} only")
    if args.captions is not None and (args.stage not in ("img2img", "inpaint") or args.captions < 1):
        parser.error(f"--captions applies to img2img and inpaint only and must be at least 1, got {args.captions}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.stage == "all" or args.fresh:
        from convert.demo_model.workdir import WORK

        shutil.rmtree(WORK, ignore_errors=True)
    for stage in STAGES if args.stage == "all" else (args.stage,):
        logging.getLogger("convert.demo_model").info("== %s ==", stage)
        run_stage(stage, args.steps, args.captions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
