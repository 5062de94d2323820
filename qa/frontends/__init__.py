"""Front ends: thin layers that parse input, call `qa.build` / `qa.retriever`, and render
(`qa.render`). Nothing inside `qa` imports them."""
