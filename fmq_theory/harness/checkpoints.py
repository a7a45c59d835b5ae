"""Trained flow-matching models on disk: a folder of safetensors weights plus a model card.

Layout of a checkpoint folder (e.g. ``checkpoints/mnist/``)::

    model.safetensors   EMA weights (fp32); its metadata holds the model config as JSON
    model_card.json     config, training settings, data checksum, steps, wall time, metrics
    MODEL_CARD.md       the same card rendered for people

:func:`save_checkpoint` writes such a folder and :func:`load_trained_model` rebuilds the network
from it: a UNet (:mod:`fmq_theory.harness.models.unet`) or a DiT
(:mod:`fmq_theory.harness.models.dit`), named by the card's ``architecture`` (``"unet"`` when
absent, as in the cards written before the DiT) with its config under ``<architecture>_config``.  Weights are only ever read with
:func:`fmq_theory.io.float_checkpoint.load_state_dict_file` - nothing is
unpickled.  (A float state dict in a single file, of any model, is read by
:func:`fmq_theory.io.float_checkpoint.load_state_dict_file`.)

:func:`load_trained_model` also takes a single file: a checkpoint of
facebookresearch/flow_matching's image example (``.pth`` with the EMA wrapper's state dict
under ``"model"``, or that state dict as ``.safetensors``), rebuilt as the paper's network
by :func:`fmq_theory.harness.models.paper_unet.paper_unet_from_state_dict` (configuration
read from the shapes, EMA averages copied into the network).

:func:`load_training_run` reads the run folder of the paper's network that
``scripts/gpu_paper_arch.py train`` writes: ``train.json`` (the run's record) beside
``ema.safetensors`` (the EMA wrapper's state dict, live weights and averages: 445 MB for the
55.7M network) and ``model.safetensors`` (the network with its averages in place, what is
evaluated: half that, so it is the file that travels between machines).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from fmq_theory._util import file_sha256, write_atomic
from fmq_theory.harness.models import architecture_of, build_model, config_from_dict
from fmq_theory.harness.models.paper_unet import PaperUNetConfig, paper_unet_from_state_dict
from fmq_theory.io.float_checkpoint import load_state_dict_file

__all__ = ["LoadedModel", "save_checkpoint", "load_trained_model", "load_training_run", "run_weights_file",
           "update_card", "run_record", "WEIGHTS_FILE", "CARD_FILE", "RUN_RECORD", "EMA_FILE"]

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
RUN_RECORD = "train.json"  # a training run's record (scripts/gpu_paper_arch.py)
EMA_FILE = "ema.safetensors"  # a training run's EMA wrapper
_CARD_MD = "MODEL_CARD.md"


@dataclass(frozen=True)
class LoadedModel:
    """A model rebuilt from a checkpoint folder.

    Attributes
    ----------
    model : UNet or DiT
        The network in eval mode on the requested device.
    card : dict
        The parsed ``model_card.json`` (for a single file: its architecture, config and
        source).
    sha256 : str
        SHA-256 of the weights file (provenance for result rows).
    path : pathlib.Path
        The checkpoint folder or file.
    """

    model: torch.nn.Module
    card: dict
    sha256: str
    path: Path


def _render_markdown(card: dict) -> str:
    lines = [f"# Model card: {card.get('dataset', '?')} flow-matching {card.get('architecture', 'unet')}", ""]
    for key in sorted(card):
        value = card[key]
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        lines.append(f"- **{key}**: {text}")
    lines.append("")
    return "\n".join(lines)


def _write_card(folder: Path, card: dict) -> None:
    write_atomic(folder / CARD_FILE,
                  lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2, sort_keys=True)))
    write_atomic(folder / _CARD_MD, lambda tmp: Path(tmp).write_text(_render_markdown(card)))


def save_checkpoint(folder: Path, model, card: dict) -> Path:
    """Write ``model``'s weights (fp32, contiguous) and ``card`` into ``folder``.

    The model config is stored both in the safetensors metadata and in the card
    (``card["<architecture>_config"]``, with ``card["architecture"]``); the card also gets
    ``weights_sha256`` and ``num_parameters``. Returns the weights path.
    """
    arch = architecture_of(model)
    if not isinstance(card, dict):
        raise TypeError(f"card must be a dict, got {type(card).__name__}")
    folder = Path(folder)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    config_json = json.dumps(model.config.to_dict(), sort_keys=True)
    weights = folder / WEIGHTS_FILE
    write_atomic(weights, lambda tmp: save_file(tensors, tmp, metadata={f"{arch}_config": config_json}))
    card = dict(card, architecture=arch, **{f"{arch}_config": model.config.to_dict()}, weights_sha256=file_sha256(weights),
                num_parameters=model.num_parameters(), weights_file=WEIGHTS_FILE)
    _write_card(folder, card)
    return weights


def update_card(folder: Path, **fields) -> dict:
    """Merge ``fields`` into the card of ``folder`` (atomically) and return the new card."""
    folder = Path(folder)
    card = json.loads((folder / CARD_FILE).read_text())
    card.update(fields)
    _write_card(folder, card)
    return card


def load_trained_model(folder: Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the trained network of a checkpoint folder from its card and weights (strict load).

    Parameters
    ----------
    folder : path-like
        A folder written by :func:`save_checkpoint` (e.g. ``checkpoints/mnist``), or a
        flow_matching image-example checkpoint file (see the module notes).
    device : str or torch.device, keyword-only
        Where the model is put (in eval mode).

    Returns
    -------
    LoadedModel
        The model, its card and the SHA-256 of its weights file.

    Raises
    ------
    FileNotFoundError
        ``folder`` lacks the weights or the card.
    ValueError
        A file that is not a flow_matching image-example checkpoint.
    """
    folder = Path(folder)
    if folder.is_file():
        model = paper_unet_from_state_dict(load_state_dict_file(folder, argument="checkpoint"))
        card = {"architecture": "paper_unet", "paper_unet_config": model.config.to_dict(),
                "num_parameters": model.num_parameters(), "source": str(folder)}
        return LoadedModel(model=model.to(device).eval(), card=card, sha256=file_sha256(folder), path=folder)
    weights = folder / WEIGHTS_FILE
    card_path = folder / CARD_FILE
    if not weights.is_file() or not card_path.is_file():
        raise FileNotFoundError(f"{folder} holds no checkpoint ({WEIGHTS_FILE} + {CARD_FILE}); "
                                f"train one with `fmq train --out {folder}`")
    card = json.loads(card_path.read_text())
    arch = card.get("architecture", "unet")
    model = build_model(config_from_dict(arch, card[f"{arch}_config"]))
    model.load_state_dict(load_state_dict_file(weights, argument="checkpoint weights"), strict=True)
    model.to(device).eval()
    return LoadedModel(model=model, card=card, sha256=file_sha256(weights), path=folder)


def run_weights_file(folder: Path) -> tuple[Path, str]:
    """The file a training run folder is read from and the key of its SHA-256 in the record:
    ``model.safetensors`` (``model_sha256``) when the folder holds it, else ``ema.safetensors``
    (``checkpoint_sha256``)."""
    folder = Path(folder)
    if (folder / WEIGHTS_FILE).is_file():
        return folder / WEIGHTS_FILE, "model_sha256"
    return folder / EMA_FILE, "checkpoint_sha256"


def run_record(folder: Path) -> dict:
    """The record ``train.json`` of a training run folder, checked to name its weights file and the training.

    Raises
    ------
    FileNotFoundError
        ``folder`` lacks the record or both weights files.
    ValueError
        The record gives no SHA-256 for the file :func:`run_weights_file` reads, or no
        ``checkpoint_sha256`` (the training's identity, which result rows carry).
    """
    folder = Path(folder)
    record_path = folder / RUN_RECORD
    if not record_path.is_file():
        raise FileNotFoundError(f"folder={str(folder)!r} holds no {RUN_RECORD} (not a training run folder)")
    card = json.loads(record_path.read_text())
    path, key = run_weights_file(folder)
    if not path.is_file():
        raise FileNotFoundError(f"folder={str(folder)!r} holds neither {WEIGHTS_FILE} nor {EMA_FILE}")
    if key not in card:
        raise ValueError(f"{record_path} gives no {key} for {path.name}")
    if "checkpoint_sha256" not in card:
        raise ValueError(f"{record_path} gives no checkpoint_sha256 (the training's identity, which result rows carry)")
    return card


def load_training_run(folder: Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """The paper's network of a training run folder, its moving averages in place, checked against its record.

    Reads ``model.safetensors`` (the averaged network) when the folder holds it, else
    ``ema.safetensors`` (the EMA wrapper, whose averages are copied into the network); the file
    read must have the SHA-256 its record ``train.json`` gives for it (``model_sha256``,
    ``checkpoint_sha256``).  The configuration comes from the record; the network is loaded with
    ``strict=True``.  Both files give the same network, bit for bit.

    Parameters
    ----------
    folder : path-like
        The run folder (e.g. ``runs/paper_arch_mnist``).
    device : str or torch.device, keyword-only
        Where the model is put (in eval mode).

    Returns
    -------
    LoadedModel
        The network, the run's record as its card, the record's ``checkpoint_sha256`` (the
        training's identity, which result rows carry, whichever file was read) and the folder.

    Raises
    ------
    FileNotFoundError
        ``folder`` lacks the record or both weights files.
    ValueError
        The file read differs from its recorded SHA-256, its record gives none, or it does not
        load into the recorded configuration.

    Examples
    --------
    >>> import json, tempfile
    >>> from fmq_theory.harness.models.paper_unet import EMA, PaperUNet, PaperUNetConfig
    >>> cfg = PaperUNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, groups=4)
    >>> ema, run = EMA(PaperUNet(cfg)), Path(tempfile.mkdtemp())
    >>> save_file(ema.averaged_state_dict(), str(run / WEIGHTS_FILE))
    >>> _ = (run / RUN_RECORD).write_text(json.dumps({"config": cfg.to_dict(), "checkpoint_sha256": "0" * 64,
    ...                                               "model_sha256": file_sha256(run / WEIGHTS_FILE)}))
    >>> load_training_run(run).model.config.model_channels
    8
    """
    card = run_record(folder)
    path, key = run_weights_file(folder)
    if file_sha256(path) != card[key]:
        raise ValueError(f"{path} differs from the SHA-256 its record gives ({card[key][:12]}...): a corrupt or foreign file")
    cfg = PaperUNetConfig.from_dict(card["config"])
    model = paper_unet_from_state_dict(load_state_dict_file(path, argument="run weights"), num_heads=cfg.num_heads,
                                       groups=cfg.groups, image_size=cfg.image_size)
    return LoadedModel(model=model.to(device).eval(), card=card, sha256=card["checkpoint_sha256"], path=folder)
