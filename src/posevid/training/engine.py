"""The accelerate training loop shared by every recipe.

One process or many (``accelerate launch`` / ``torchrun``), DeepSpeed or FSDP through accelerate's own
config (no code here), fp16/bf16 autocast, gradient accumulation, gradient checkpointing (in the recipe),
8-bit AdamW (bitsandbytes), EMA (diffusers ``EMAModel``), diffusers LR schedules, TensorBoard, validation
samples every N steps, atomic checkpoints every N steps with keep-last-K, and ``--resume latest|PATH``.

Exact resume: the data order and every random draw of a sample (frames, crops, noise, timestep) are pure
functions of ``(seed, epoch, position)`` (see :mod:`posevid.training.sampler`), and the optimizer, LR
schedule, EMA and the process RNG states are restored from the checkpoint, so a killed-and-resumed run ends
with the same weights as an uninterrupted one. The LR schedule is stepped once per optimizer step by us (not
by accelerate's wrapper, which steps it once per process), so schedules do not depend on the world size.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posevid.errors import InputError, PosevidError
from posevid.training import checkpointing as ck
from posevid.training.recipe import Recipe
from posevid.training.sampler import ResumableSampler
from posevid.utils.devices import cpu_only, torch_dtype
from posevid.utils.jsonl import append_json_line
from posevid.utils.progress import progress_bar

log = logging.getLogger("posevid.training")


def build_optimizer(cfg: dict[str, Any], params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    kwargs = dict(lr=lr, betas=(cfg["adam_beta1"], cfg["adam_beta2"]), weight_decay=cfg["adam_weight_decay"], eps=cfg["adam_epsilon"])
    if cfg.get("use_8bit_adam"):
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise PosevidError(
                "use_8bit_adam needs the bitsandbytes package, which is not installed",
                hint="pip install bitsandbytes (CUDA machines), or drop --use-8bit-adam",
            ) from None
        return bnb.optim.AdamW8bit(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


class _JsonLog:
    """``train_log.jsonl`` in the run folder (main process): step, loss, lr - handy for scripts and tests."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            append_json_line(self.path, record)


@dataclass
class _Plan:
    """The schedule of one run (see :meth:`Trainer._plan`)."""

    sampler: ResumableSampler
    world: int  # processes
    ga: int  # micro-steps per optimizer step
    steps_per_epoch: int
    max_steps: int
    lr: float


@dataclass
class _Optimisation:
    """What :meth:`Trainer._optimisation` sets up: the (prepared) optimizer, LR schedule, EMA, models and clipped parameters."""

    optimizer: Any
    lr_scheduler: Any
    ema: Any
    models: list[Any]
    clip_params: list[torch.nn.Parameter]


class Trainer:
    def __init__(self, recipe: Recipe, cfg: dict[str, Any]) -> None:
        self.recipe, self.cfg = recipe, cfg
        self.output_dir = Path(cfg["output_dir"])
        self._last_saved = -1  # the optimizer step of the last checkpoint saved by this run

    # ------------------------------------------------------------------------------------------
    def _accelerator(self):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        report = self.cfg.get("report_to") or "none"
        log_with = None
        if report not in ("none", None):
            log_with = report
            if report == "tensorboard":
                from posevid.utils.extras import require

                require("tensorboard", "training with --report-to tensorboard (the default)")
        logging_dir = self.output_dir / "logs" / (self.cfg.get("run_name") or "")
        return Accelerator(
            cpu=cpu_only(),
            gradient_accumulation_steps=int(self.cfg["gradient_accumulation_steps"]),
            mixed_precision=self.cfg["mixed_precision"],
            log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(logging_dir)),
        )

    def run(self) -> dict[str, Any]:
        """Train: set up the run folder, the recipe and the optimisation, resume if asked, loop, save, export."""
        cfg, recipe = self.cfg, self.recipe
        self.accelerator = accelerator = self._accelerator()
        self._prepare_run_folder()
        if cfg.get("use_8bit_adam"):
            build_optimizer(cfg, [torch.nn.Parameter(torch.zeros(1))], 1e-3)  # fail before loading any model
        torch.manual_seed(int(cfg["seed"]))
        weight_dtype = torch_dtype("fp32" if cfg["mixed_precision"] == "no" else cfg["mixed_precision"])  # accelerate's "no" = fp32
        recipe.setup(accelerator, weight_dtype)
        dataset = recipe.dataset()
        plan = self._plan(len(dataset))
        opt = self._optimisation(plan)
        global_step, resume_path = self._resume(opt)
        if accelerator.is_main_process and accelerator.trackers == [] and accelerator.log_with:
            flat = {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool))}
            accelerator.init_trackers(f"posevid-{recipe.name}", config=flat)
        jlog = _JsonLog(self.output_dir / "train_log.jsonl", accelerator.is_main_process)
        jlog.write({"event": "start", "step": global_step, "world_size": plan.world, "max_train_steps": plan.max_steps,
                    "steps_per_epoch": plan.steps_per_epoch, "dataset_size": len(dataset), "resumed_from": str(resume_path or "")})
        t0 = time.time()
        global_step, micro = self._loop(dataset, plan, opt, global_step, jlog)
        return self._finish(plan, opt, global_step, micro, jlog, t0)

    def _prepare_run_folder(self) -> None:
        """The run folder (main process), without the unfinished checkpoints of a killed run; notes on ignored options."""
        cfg, accelerator = self.cfg, self.accelerator
        if accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for p in ck.clean_stale(self.output_dir):
                log.warning("removed an unfinished checkpoint folder left by a killed run: %s", p.name)
        accelerator.wait_for_everyone()
        if str(accelerator.distributed_type).split(".")[-1] in ("DEEPSPEED", "FSDP") and cfg.get("checkpointing_steps"):
            log.warning(
                "%s shards optimizer states; posevid checkpoints save the unsharded optimizer of the main process, so "
                "resuming from them is not exact under this back-end (exports are unaffected)",
                accelerator.distributed_type,
            )
        if cfg.get("enable_xformers_memory_efficient_attention"):
            log.info("enable_xformers_memory_efficient_attention is ignored: PyTorch SDPA is used")
        if cfg.get("revision"):
            log.info("revision=%s is ignored: the model folder is used as given", cfg["revision"])

    def _plan(self, dataset_size: int) -> _Plan:
        """The data order (one sampler for every process) and the schedule: optimizer steps, per epoch, learning rate."""
        cfg, accelerator = self.cfg, self.accelerator
        world, rank = accelerator.num_processes, accelerator.process_index
        batch = int(cfg["train_batch_size"])
        ga = int(cfg["gradient_accumulation_steps"])
        sampler = ResumableSampler(dataset_size, batch, world_size=world, rank=rank, seed=int(cfg["seed"]))
        if cfg.get("max_train_steps"):
            max_steps = int(cfg["max_train_steps"])
        else:
            max_steps = int(cfg["num_train_epochs"]) * math.ceil(sampler.micro_per_epoch / ga)
        lr = float(cfg["learning_rate"])
        if cfg.get("scale_lr"):
            lr *= ga * batch * world
        return _Plan(sampler, world, ga, max(1, sampler.micro_per_epoch // ga), max_steps, lr)

    def _optimisation(self, plan: _Plan) -> _Optimisation:
        """Optimizer, LR schedule and (optional) EMA of the recipe's trainable parameters, the models prepared by accelerate."""
        from diffusers.optimization import get_scheduler

        cfg, recipe = self.cfg, self.recipe
        params = recipe.trainable_parameters()
        if not params:
            raise InputError(f"recipe {recipe.name} has nothing to train", hint="check trainable_modules in the config")
        optimizer = build_optimizer(cfg, params, plan.lr)
        lr_scheduler = get_scheduler(
            cfg["lr_scheduler"], optimizer=optimizer, num_warmup_steps=int(cfg["lr_warmup_steps"]), num_training_steps=plan.max_steps
        )
        clip_params = recipe.clip_parameters() if hasattr(recipe, "clip_parameters") else params
        prepared = self.accelerator.prepare(*recipe.trainable_modules(), optimizer)
        recipe.set_prepared(list(prepared[:-1]))
        ema = None
        if cfg.get("use_ema"):
            from diffusers.training_utils import EMAModel

            ema = EMAModel(recipe.trainable_parameters(), decay=float(cfg["ema_decay"]))
            ema.to(self.accelerator.device)
        return _Optimisation(prepared[-1], lr_scheduler, ema, list(prepared[:-1]), clip_params)

    def _resume(self, opt: _Optimisation) -> tuple[int, Path | None]:
        """The optimizer step to start from and the checkpoint it comes from (``resume``: latest or a path), if any."""
        cfg = self.cfg
        resume_path = ck.resolve_resume(cfg.get("resume"), self.output_dir)
        if cfg.get("resume") and resume_path is None:
            log.info("resume=%s: no checkpoint in %s yet, starting from scratch", cfg["resume"], self.output_dir)
        if resume_path is None:
            return 0, None
        global_step = self._load_checkpoint(resume_path, opt.optimizer, opt.lr_scheduler, opt.ema)
        self.accelerator.print(f"resumed from {resume_path} at step {global_step}")
        return global_step, resume_path

    def _loop(self, dataset, plan: _Plan, opt: _Optimisation, global_step: int, jlog: _JsonLog) -> tuple[int, int]:
        """The micro-steps from ``global_step`` to the end: accumulate, step, log, checkpoint, validate. Returns the last
        optimizer step and micro-step."""
        from torch.utils.data import DataLoader

        from posevid.data.datasets import collate_dicts

        cfg, recipe, accelerator = self.cfg, self.recipe, self.accelerator
        ga, sampler = plan.ga, plan.sampler
        start_micro = global_step * ga
        batches = list(sampler.iterate(start_micro, plan.max_steps * ga))
        loader = DataLoader(
            dataset, batch_sampler=batches, collate_fn=collate_dicts, num_workers=int(cfg.get("dataloader_num_workers") or 0)
        )
        main = accelerator.is_main_process
        bar = progress_bar(total=plan.max_steps, initial=global_step, desc=f"train {recipe.name}", enabled=main, unit="step", leave=True)
        for m in opt.models:
            m.train()
        micro = start_micro
        accum_loss = 0.0
        self._last_saved = -1
        for mb, batch_data in zip(batches, loader, strict=True):
            keys = [k for _, k in mb]
            with accelerator.accumulate(*opt.models):
                with accelerator.autocast():
                    loss = recipe.loss(batch_data, keys, micro)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.get("max_grad_norm"):
                    accelerator.clip_grad_norm_(opt.clip_params, float(cfg["max_grad_norm"]))
                opt.optimizer.step()
                opt.optimizer.zero_grad(set_to_none=True)
            micro += 1
            accum_loss += float(accelerator.reduce(loss.detach().float(), reduction="mean")) / ga
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            self._after_step(opt, plan, global_step, micro, accum_loss, jlog, bar)
            accum_loss = 0.0
        bar.close()
        return global_step, micro

    def _after_step(self, opt: _Optimisation, plan: _Plan, global_step: int, micro: int, loss: float, jlog: _JsonLog, bar) -> None:
        """One optimizer step done: LR schedule and EMA, the log line, and the checkpoint or validation due at this step."""
        cfg, accelerator = self.cfg, self.accelerator
        opt.lr_scheduler.step()
        if opt.ema is not None:
            opt.ema.step(self.recipe.trainable_parameters())
        epoch = (micro - 1) // plan.sampler.micro_per_epoch
        record = {"step": global_step, "loss": loss, "lr": opt.lr_scheduler.get_last_lr()[0], "epoch": epoch}
        accelerator.log({"train_loss": record["loss"], "lr": record["lr"]}, step=global_step)
        jlog.write(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
        if cfg.get("checkpointing_steps") and global_step % int(cfg["checkpointing_steps"]) == 0:
            self._save_checkpoint(global_step, micro, opt.optimizer, opt.lr_scheduler, opt.ema, plan.world)
            self._last_saved = global_step
        vs = cfg.get("validation_steps")
        if vs and global_step % int(vs) == 0 and accelerator.is_main_process:
            self._validate(global_step, opt.ema)

    def _finish(self, plan: _Plan, opt: _Optimisation, global_step: int, micro: int, jlog: _JsonLog, t0: float) -> dict[str, Any]:
        """The last checkpoint (unless just saved), the exports (main process) and the end of the log."""
        accelerator = self.accelerator
        if self._last_saved != global_step:
            self._save_checkpoint(global_step, micro, opt.optimizer, opt.lr_scheduler, opt.ema, plan.world)
        accelerator.wait_for_everyone()
        exported: list[Path] = []
        if accelerator.is_main_process and self.cfg.get("export", True):
            exported = self._export(global_step, max(0, micro - 1) // plan.sampler.micro_per_epoch, opt.ema)
        accelerator.wait_for_everyone()
        jlog.write({"event": "end", "step": global_step, "seconds": time.time() - t0, "world_size": plan.world,
                    "exported": [str(p) for p in exported]})  # fmt: skip
        accelerator.end_training()
        return {"global_step": global_step, "world_size": plan.world, "output_dir": str(self.output_dir), "exported": exported}

    # ------------------------------------------------------------------------------------------
    def _with_ema(self, ema, fn):
        """Run ``fn`` with the EMA weights swapped in (diffusers' store/copy_to/restore)."""
        if ema is None:
            return fn()
        params = self.recipe.trainable_parameters()
        ema.store(params)
        ema.copy_to(params)
        try:
            return fn()
        finally:
            ema.restore(params)

    def _validate(self, step: int, ema) -> None:
        out = self.output_dir / "samples" / f"step-{step}"
        with torch.random.fork_rng(devices=[]):
            try:
                with self.accelerator.autocast():  # frozen weights may be fp16/bf16 next to fp32 trained ones
                    paths = self._with_ema(ema, lambda: self.recipe.validate(out, step))
            except PosevidError as exc:
                log.warning("validation at step %d skipped: %s", step, exc)
                return
        if paths:
            log.info("validation samples: %s", ", ".join(str(p) for p in paths))

    def _export(self, step: int, epoch: int, ema) -> list[Path]:
        return self._with_ema(ema, lambda: self.recipe.export(self.output_dir, step, epoch))

    def _save_checkpoint(self, step: int, micro: int, optimizer, lr_scheduler, ema, world: int) -> None:
        acc = self.accelerator
        if acc.is_main_process:
            import shutil

            shutil.rmtree(ck.temp_dir(self.output_dir, step), ignore_errors=True)  # an earlier run's unfinished attempt
        acc.wait_for_everyone()
        outputs, tmp = ck.checkpoint_outputs(self.output_dir, step)
        acc.wait_for_everyone()
        tensors, meta = ck.rng_state()
        ck.save_tensors(tmp / f"rng_rank{acc.process_index}.safetensors", tensors)
        ck.write_json(tmp / f"rng_rank{acc.process_index}.json", meta)
        if acc.is_main_process:
            ck.save_tensors(tmp / "trainable.safetensors", self.recipe.trainable_state_dict())
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            ck.write_json(tmp / "lr_scheduler.json", lr_scheduler.state_dict())
            if ema is not None:
                sd = ema.state_dict()
                shadow = sd.pop("shadow_params")
                ck.save_tensors(tmp / "ema.safetensors", {f"shadow.{i}": t for i, t in enumerate(shadow)})
                ck.write_json(tmp / "ema.json", sd)
        acc.wait_for_everyone()
        if acc.is_main_process:
            ck.write_json(
                tmp / ck.STATE_FILE,
                {
                    "global_step": step,
                    "micro_step": micro,
                    "world_size": world,
                    "recipe": self.recipe.name,
                    "seed": self.cfg["seed"],
                    "train_batch_size": self.cfg["train_batch_size"],
                    "gradient_accumulation_steps": self.cfg["gradient_accumulation_steps"],
                },
            )
            outputs.commit()
            ck.prune(self.output_dir, self.cfg.get("checkpoints_total_limit"))
            if self.cfg.get("export_every_checkpoint"):
                self._export(step, 0, ema)
        acc.wait_for_everyone()

    def _load_checkpoint(self, path: Path, optimizer, lr_scheduler, ema) -> int:
        acc = self.accelerator
        state = json.loads((path / ck.STATE_FILE).read_text())
        if state.get("recipe") not in (None, self.recipe.name):
            raise InputError(f"{path} is a {state.get('recipe')} checkpoint, not {self.recipe.name}", hint="resume with the same recipe")
        for k in ("train_batch_size", "gradient_accumulation_steps", "seed"):
            if k in state and str(state[k]) != str(self.cfg[k]):
                log.warning("resume: %s was %s in the checkpoint, now %s: the data order will differ", k, state[k], self.cfg[k])
        self.recipe.load_trainable_state_dict(ck.load_tensors(path / "trainable.safetensors"))
        opt_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(opt_state)
        lr_scheduler.load_state_dict(json.loads((path / "lr_scheduler.json").read_text()))
        if ema is not None and (path / "ema.safetensors").is_file():
            sd = json.loads((path / "ema.json").read_text())
            shadow = ck.load_tensors(path / "ema.safetensors")
            sd["shadow_params"] = [shadow[f"shadow.{i}"].to(acc.device) for i in range(len(shadow))]
            ema.load_state_dict(sd)
        rng_t, rng_j = path / f"rng_rank{acc.process_index}.safetensors", path / f"rng_rank{acc.process_index}.json"
        if state.get("world_size") == acc.num_processes and rng_t.is_file():
            ck.set_rng_state(ck.load_tensors(rng_t), json.loads(rng_j.read_text()))
        else:
            log.warning(
                "resume: world size changed (%s -> %s); process RNG states not restored", state.get("world_size"), acc.num_processes
            )
        return int(state["global_step"])


def train(recipe_name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the recipe named ``recipe_name`` and run it with the merged ``cfg``."""
    from posevid.training.recipes import get_recipe

    recipe = get_recipe(recipe_name)(cfg)
    return Trainer(recipe, cfg).run()
