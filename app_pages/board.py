"""Class challenge: the live board, submitting a model, and the teacher's controls."""

import pandas as pd
import streamlit as st

from convae import ConvaeError
from convae.classroom.challenge import (
    HELD_OUT_SIZE,
    NEEDS_LIMIT,
    RULES,
    ChallengeError,
    columns,
    make_challenge,
    score_text,
)
from convae.data.datasets import DATASETS
from convae.data.noise import NOISE_KINDS
from convae.figures import board_figure
from ui import challenge as board_ui
from ui import layout, nav, widgets
from ui.errors import guarded
from ui.links import URL
from ui.state import DATASET_LABELS

REFRESH_S = 2.0  # the board reloads itself this often: a submission shows within seconds
TOP = [3, 5, 10, 20, 50]

st.title(nav.title(__file__))
layout.explain(
    "Submit the model you trained, under a nickname. The server measures it on "
    f"{HELD_OUT_SIZE:,} test images that no page ever shows and nobody trains on, the "
    "same way for everyone; the board updates by itself. Submit again: your best counts."
)
store = board_ui.require_store()
# by title: a link carries a menu's option as shown, and titles are unique (so are the
# slugs made from them)
listed = {c.challenge.title: c for c in store.challenges()}
c_pick, c_top = st.columns([3, 1])
title = c_pick.selectbox("Challenge", list(listed), key="board_challenge", bind=URL)
top = c_top.select_slider("Entries shown", TOP, 10, key="board_top", bind=URL)
current = listed[title]
slug = current.challenge.slug
st.caption(
    f"**{current.challenge.describe()}.** "
    + ("Open for submissions." if current.is_open else "Closed: the teacher stopped submissions.")
)


@st.cache_data(max_entries=64, show_spinner=False)
def chart(
    nicknames: tuple[str, ...],
    codes: tuple[int, ...],
    psnrs: tuple[float, ...],
    ranked: tuple[bool, ...],
    code_limit: float | None,
    psnr_floor: float | None,
) -> dict:
    """The board's chart as plotly's JSON, built once per state of the board: every
    viewer redraws it every few seconds, and building a figure costs 10-20 ms."""
    return board_figure(nicknames, codes, psnrs, ranked, code_limit, psnr_floor).to_plotly_json()


@st.fragment(run_every=REFRESH_S)
@guarded
def live_board(slug: str, top: int) -> None:
    try:
        challenge, board = store.board(slug)
    except ChallengeError as e:
        st.warning(f"{e}.", icon=":material/flag:")
        return
    ranked = [r for r in board if r.place is not None]
    c1, c2, c3 = st.columns(3)
    c1.metric("Students", len(board))
    c2.metric("Submissions", sum(r.submissions for r in board))
    c3.metric("Meet the rule", len(ranked))
    if not board:
        st.info(
            "No entries yet. Train a model on the Train page and submit it below.",
            icon=":material/hourglass_empty:",
        )
        return
    shown = board[:top]
    with layout.main_picture():
        c_table, c_chart = st.columns([1.4, 1])
        rows = columns(challenge, shown)
        for row in rows:  # as text before pandas makes a column with a gap floats
            row["place"] = "—" if row["place"] is None else str(row["place"])
        table = pd.DataFrame(rows)
        c_table.dataframe(  # cells are plain text: a nickname is never read as markup
            table[["place", "nickname", "score", "arch", "code_size", "params", "ssim"]],
            hide_index=True,
            column_config={
                "place": st.column_config.TextColumn(
                    "Place", help="—: it does not meet the rule, so it has no place"
                ),
                "nickname": "Nickname",
                "score": "Score",
                "arch": "Architecture",
                "code_size": st.column_config.NumberColumn("Code", format="%d"),
                "params": st.column_config.NumberColumn("Parameters", format="%d"),
                "ssim": st.column_config.NumberColumn("SSIM", format="%.3f"),
            },
        )
        c_chart.plotly_chart(
            chart(
                tuple(r.entry.nickname for r in board),
                tuple(r.entry.code_size for r in board),
                tuple(r.entry.psnr for r in board),
                tuple(r.place is not None for r in board),
                challenge.limit if challenge.rule == "psnr-code-limit" else None,
                challenge.limit if challenge.rule == "smallest-code" else None,
            ),
            key="board_chart",
        )
    podium = st.columns(3)
    for r, where in zip(ranked[:3], podium, strict=False):
        with where:
            st.text(f"{r.place}. {r.entry.nickname}: {score_text(challenge, r.entry)}")
            picture = board_ui.reconstructions(store.url, r.entry.id)
            if picture is not None:
                st.image(picture, width="stretch")
    if ranked:
        st.caption(
            "The best three: top row the input (the same public test images for everyone), "
            "bottom row the entry's reconstruction."
        )
    if len(board) > top:
        st.caption(f"{len(board) - top} more not shown (see 'Entries shown').")
    if board_ui.pending() or st.session_state["submissions"]:
        board_ui.my_submissions()


live_board(slug, top)

# ------------------------------------------------------------------ submitting
own = None
model_id = st.session_state["model_id"] or ""
if model_id.startswith("session:"):
    own = st.session_state["session_models"].get(model_id)
with st.expander("Submit your model", icon=":material/send:", expanded=not layout.presenting()):
    if own is not None and own.dataset == current.challenge.dataset:
        st.caption(f"Your current model (see the sidebar): {own.label}.")
        board_ui.submit_form(own.model, own.meta, None, key="board_submit", only=current)
    else:
        st.caption(
            "Train a model on the Train page (it becomes your current model) and submit it "
            "here, or upload a checkpoint you saved."
        )
        board_ui.submit_form(None, {}, None, key="board_upload", only=current)


# ------------------------------------------------------------------ the teacher
def teacher_panel(slug: str) -> None:
    if board_ui.passphrase() is None:
        st.info(
            "The teacher's controls are off: no passphrase is set. To turn them on, start "
            f"the server with `{board_ui.PASSPHRASE_ENV}` set (or `{board_ui.SECRET_NAME}` in "
            "`.streamlit/secrets.toml`).",
            icon=":material/lock:",
        )
        return
    if not board_ui.is_teacher():
        with st.form("board_unlock", border=False):
            attempt = st.text_input("Teacher passphrase", type="password", key="board_pass")
            if st.form_submit_button("Unlock", icon=":material/key:"):
                message = board_ui.unlock(attempt or "")
                if message is None:
                    st.rerun()
                st.error(f"{message[0].upper()}{message[1:]}.", icon=":material/lock:")
        return
    challenge = current
    act = board_ui.teacher_only
    c_open, c_reset, c_csv, c_lock = st.columns(4)
    c_open.button(
        "Close submissions" if challenge.is_open else "Open submissions",
        key="board_t_open",
        on_click=act(store.set_open),
        args=(slug, not challenge.is_open),
        width="stretch",
    )
    confirm = c_reset.checkbox("Yes, remove every entry", key="board_t_confirm")
    c_reset.button(
        "Reset the board",
        key="board_t_reset",
        disabled=not confirm,
        on_click=act(store.reset),
        args=(slug,),
        width="stretch",
    )
    c_csv.download_button(
        "Export CSV",
        lambda: store.csv(slug) if board_ui.is_teacher() else "",
        file_name=f"{slug}.csv",
        mime="text/csv",
        key="board_t_csv",
        icon=":material/download:",
        on_click="ignore",
        width="stretch",
    )
    c_lock.button("Lock", key="board_t_lock", on_click=board_ui.lock, width="stretch")

    entries = store.entries(slug, include_hidden=True)
    if entries:
        by_id = {e.id: e for e in entries}
        c_entry, c_hide, c_remove = st.columns([3, 1, 1], vertical_alignment="bottom")
        picked = c_entry.selectbox(
            "Entry",
            list(by_id),
            key="board_t_entry",
            format_func=lambda i: (
                f"#{i} {by_id[i].nickname} ({by_id[i].psnr:.2f} dB)"
                + (" hidden" if by_id[i].hidden else "")
            ),
        )
        hidden = by_id[picked].hidden
        c_hide.button(
            "Show" if hidden else "Hide",
            key="board_t_hide",
            on_click=act(store.set_hidden),
            args=(picked, not hidden),
            width="stretch",
        )
        c_remove.button(
            "Remove",
            key="board_t_remove",
            on_click=act(store.remove),
            args=(picked,),
            width="stretch",
        )

    st.markdown("**Open a new challenge**")
    with st.form("board_t_new", border=False):
        c_title, c_data = st.columns([2, 1])
        title = c_title.text_input("Title", max_chars=80, key="board_t_title")
        dataset = c_data.selectbox(
            "Dataset", list(DATASETS), format_func=DATASET_LABELS.get, key="board_t_dataset"
        )
        c_noise, c_level, c_rule, c_limit = st.columns(4)
        kinds = ["none", *NOISE_KINDS]
        kind = c_noise.selectbox(
            "Task", kinds, format_func=widgets.NOISE_LABELS.get, key="board_t_kind"
        )
        level = c_level.slider("Noise level", 0.05, 1.0, 0.5, 0.05, key="board_t_level")
        rule = c_rule.selectbox(
            "Ranked by",
            list(RULES),
            format_func=lambda r: RULES[r].format(limit=0).replace(" 0 ", " N "),
            key="board_t_rule",
        )
        limit = c_limit.number_input(
            "Limit (code values or dB)",
            0.0,
            100_000.0,
            196.0,
            key="board_t_limit",
            help=", ".join(f"{r}: {what}" for r, what in NEEDS_LIMIT.items()),
        )
        if st.form_submit_button("Open the challenge", icon=":material/flag:"):
            if not board_ui.is_teacher():
                return
            try:
                new = make_challenge(
                    title or "",
                    dataset,
                    "none" if kind == "none" else f"{kind}:{level:g}",
                    rule,
                    limit,
                )
                store.add_challenge(new)
                st.session_state["_board_opened"] = new.slug
                st.rerun()
            except ConvaeError as e:
                st.error(f"{e}.", icon=":material/block:")


with st.expander("Teacher's controls", icon=":material/admin_panel_settings:"):
    guarded(teacher_panel)(slug)
    opened = st.session_state.pop("_board_opened", None)
    if opened:
        st.success(f"Opened: choose it in the Challenge menu above ({opened}).")
