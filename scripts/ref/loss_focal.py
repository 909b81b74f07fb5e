"""Focal-loss reference written from docs/methods.md §5 (torchvision's sigmoid_focal_loss and
AdeelH's softmax focal loss, with the two label-smoothing readings), in float64 autograd.

Each case: logits, targets, mode, gamma, alpha (null | number | list), ignore_index,
label_smoothing, smoothing_mode (pt | soft), reduction (none | sum | mean | weighted_mean).
Answer per case: loss and grad (d sum(loss) / d logits).
"""
import torch
import torch.nn.functional as F

from loss_common import from_tensor, run, to_tensor


def sigmoid_focal(x, y, alpha, gamma, eps, smoothing_mode):
    # torchvision ops/focal_loss.py, written out; smoothing per the spec's two readings.
    p = torch.sigmoid(x)
    y_s = y * (1 - eps) + eps / 2 if eps > 0 else y
    if smoothing_mode == "pt":
        ce = F.binary_cross_entropy_with_logits(x, y_s, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * ((1 - p_t) ** gamma)
        if alpha is not None:
            alpha_t = alpha * y + (1 - alpha) * (1 - y)
            loss = alpha_t * loss
        else:
            alpha_t = torch.ones_like(loss)
    else:
        a_pos = alpha if alpha is not None else 1.0
        a_neg = (1 - alpha) if alpha is not None else 1.0
        loss = (a_pos * y_s * (1 - p) ** gamma * -torch.log(p)
                + a_neg * (1 - y_s) * p ** gamma * -torch.log(1 - p))
        alpha_t = (alpha * y + (1 - alpha) * (1 - y)) if alpha is not None else torch.ones_like(loss)
    return loss, alpha_t


def softmax_focal(x, t, alpha, gamma, eps, smoothing_mode, ignore_index):
    # AdeelH: drop ignored targets first, alpha via NLLLoss(weight=alpha).
    C = x.shape[-1]
    x = x.reshape(-1, C)
    t = t.reshape(-1)
    keep = t != ignore_index
    x, t = x[keep], t[keep]
    logp = F.log_softmax(x, dim=-1)
    w = alpha if alpha is not None else torch.ones(C, dtype=x.dtype)
    ce = F.nll_loss(logp, t, weight=w, reduction="none")  # alpha_y * -log p_y
    p = logp.exp()
    if smoothing_mode == "pt":
        p_y = p.gather(1, t[:, None]).squeeze(1)
        smooth = -(logp * w).sum(-1) / C
        loss = (1 - p_y) ** gamma * ((1 - eps) * ce + eps * smooth)
    else:
        q = torch.full_like(logp, eps / C)
        q[torch.arange(len(t)), t] += 1 - eps
        loss = (q * w * (1 - p) ** gamma * -logp).sum(-1)
    return loss, w[t], keep


def case_fn(case):
    x = to_tensor(case["logits"]).double().requires_grad_(True)
    t = to_tensor(case["targets"])
    alpha = case.get("alpha")
    if isinstance(alpha, list):
        alpha = torch.tensor(alpha, dtype=torch.float64)
    gamma, eps = case["gamma"], case["label_smoothing"]
    red = case["reduction"]
    if case["mode"] == "sigmoid":
        if isinstance(alpha, float) and alpha < 0:
            alpha = None
        y = t.double() if t.shape == x.shape else F.one_hot(t, x.shape[-1]).double()
        loss, alpha_t = sigmoid_focal(x, y, alpha, gamma, eps, case["smoothing_mode"])
        n = loss.numel()
        if red == "none":
            out = loss
        elif red == "sum":
            out = loss.sum()
        elif red == "mean":
            out = loss.sum() / n
        else:
            out = loss.sum() / alpha_t.sum()
    else:
        if isinstance(alpha, float):
            alpha = torch.full((x.shape[-1],), alpha, dtype=torch.float64)
        loss, alpha_y, keep = softmax_focal(x, t, alpha, gamma, eps, case["smoothing_mode"],
                                            case["ignore_index"])
        if red == "none":
            full = torch.zeros(keep.shape, dtype=loss.dtype)
            full = full.masked_scatter(keep, loss)
            out = full.reshape(t.shape)
        elif red == "sum":
            out = loss.sum()
        elif red == "mean":
            out = loss.sum() / max(1, len(loss))
        else:
            out = loss.sum() / alpha_y.sum()
    (grad,) = torch.autograd.grad(out.sum(), x)
    return {"loss": from_tensor(out), "grad": from_tensor(grad)}


if __name__ == "__main__":
    run(case_fn)
