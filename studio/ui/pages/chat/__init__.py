"""The Chat page: a run's tuned model and its base answer the same question side by side, streamed."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("chat", "Chat", "Ask the tuned model and its base the same question",
                icon="chat", module="studio.ui.pages.chat.page", cls="ChatPage",
                needs=("store_root",), lists_runs=True, run_actions=("chat",))
