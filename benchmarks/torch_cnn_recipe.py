"""The CNN recipe of ``chainrule train --model cnn`` written in PyTorch, for comparison.

    python benchmarks/torch_cnn_recipe.py --epochs 15 --seed 0      # accuracy per epoch
    python benchmarks/torch_cnn_recipe.py --epochs 1                # the time of an epoch

Same data (the Fashion-MNIST IDX files read by chainrule's reader, scaled to [0, 1] and
standardised with the training set's mean and σ), same model (``bench_conv.torch_model``:
``--convs-per-block`` × [conv 3×3 → BatchNorm → ReLU] and a maxpool 2 per ``--channels``
size, dropout, linear 128, linear 10), Kaiming-normal hidden weights, Xavier-normal output
layer, zero biases, Adam lr 1e-3, cosine annealing per epoch, cross-entropy with
``--label-smoothing``, shuffled minibatches of 128, evaluation in batches of 1000;
``--augment-shift N`` shifts each training image by up to N pixels with chainrule's own
``RandomShiftFlip`` (the same augmentation, drawn from a seeded chainrule generator).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--channels", default="32,64", help="conv block sizes, e.g. 32,64,128")
    parser.add_argument("--convs-per-block", type=int, default=None, help="default: the CNN's")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--augment-shift", type=int, default=0)
    args = parser.parse_args()
    channels = tuple(int(c) for c in args.channels.split(","))

    import torch

    from bench_conv import torch_model
    from chainrule.data import datasets

    torch.manual_seed(args.seed)
    train_set = datasets.DATASETS["fashion-mnist"](train=True)
    test_set = datasets.DATASETS["fashion-mnist"](train=False)
    x_train, y_train = (torch.from_numpy(a) for a in train_set.arrays())
    x_test, y_test = (torch.from_numpy(a) for a in test_set.arrays())
    mean, std = x_train.mean(), x_train.std(unbiased=False)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    convs = {} if args.convs_per_block is None else {"convs_per_block": args.convs_per_block}
    model = torch_model(torch, channels, args.dropout, **convs)
    shift = None
    if args.augment_shift:
        import chainrule as cr
        from chainrule.data.augment import RandomShiftFlip

        shift = RandomShiftFlip(args.augment_shift, flip=0.0, generator=cr.Generator(args.seed))
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    for i, layer in enumerate(layers):
        if i < len(layers) - 1:
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        else:
            torch.nn.init.xavier_normal_(layer.weight)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train))
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            xb = x_train[idx]
            if shift is not None:
                xb = torch.from_numpy(shift(cr.Tensor(xb.numpy())).numpy())
            loss = loss_fn(model(xb), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        schedule.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat(
                [model(x_test[i : i + 1000]).argmax(1) for i in range(0, 10000, 1000)]
            )
        accuracy = (predicted == y_test).float().mean().item()
        print(f"epoch {epoch:3d}  test acc {accuracy:.2%}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
