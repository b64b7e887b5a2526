"""The VRChat session: hearing VRChat, finding it with OSCQuery, what it says about the avatar."""
