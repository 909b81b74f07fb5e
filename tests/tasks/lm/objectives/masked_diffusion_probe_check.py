"""Independent check of an `attnlab probe probe.target=masked_diffusion_loss` dump (read with
torch.load): x_t is x_0 with [MASK] exactly where `masked`; the loss equals
sum over masked tokens of CE(logits with the [MASK] column removed, x_0) / t, divided by the
number of tokens; autograd of that recomputation gives the dumped logit gradient.
Usage: masked_diffusion_probe_check.py MASK_ID DUMP... (one Python start for several dumps).
Exit code 0 = all checks pass."""
import sys

import torch


def main(path, mask_id):
    d = torch.load(path)
    logits, x0, xt = d["logits"].double(), d["targets"], d["input"]
    masked, t = d["masked"], d["t"].double()
    failures = []
    if not torch.equal(xt, torch.where(masked, torch.full_like(x0, mask_id), x0)):
        failures.append("input is not targets with [MASK] at the masked positions")
    if bool((x0 == mask_id).any()):
        failures.append("targets contain the [MASK] id")
    logits = logits.clone().requires_grad_(True)
    keep = torch.ones(logits.shape[-1], dtype=torch.bool)
    keep[mask_id] = False
    # SUBS: softmax over the vocabulary without [MASK]; ids above mask_id shift down by one.
    ce = torch.nn.functional.cross_entropy(
        logits[..., keep].reshape(-1, logits.shape[-1] - 1),
        (x0 - (x0 > mask_id).long()).reshape(-1), reduction="none").view_as(t)
    loss = (ce / t)[masked].sum() / x0.numel()
    loss.backward()
    if abs(loss.item() - d["loss"].item()) > 1e-9 * max(1.0, abs(loss.item())):
        failures.append(f"loss {d['loss'].item()!r} != recomputed {loss.item()!r}")
    if abs(d["token_count"].item() - x0.numel()) > 0:
        failures.append("token_count is not the number of tokens")
    err = (logits.grad - d["logit_grad"].double()).abs().max().item()
    if err > 1e-12:
        failures.append(f"logit_grad differs from autograd of the recomputed loss by {err}")
    for f in failures:
        print(f"FAIL ({path}):", f)
    print(f"loss {loss.item():.6f}, masked {int(masked.sum())}/{masked.numel()}, grad err {err:.2e}")
    return len(failures)


if __name__ == "__main__":
    mask = int(sys.argv[1])
    sys.exit(1 if sum(main(path, mask) for path in sys.argv[2:]) else 0)
